"""The params schema: every bad key, type and value stops with one clear line."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import typing

import pytest
import yaml

from cyclelab import config
from cyclelab.errors import ConfigError
from tests.conftest import REPO, write_params


def test_repo_params_file_is_valid():
    cfg = config.load(REPO / "params.yaml")
    assert {"baseline", "ae_init"} <= set(cfg.variants)
    assert cfg.variants["ae_init"].init == "ae"


def test_defaults_fill_missing_keys(tiny_params):
    assert tiny_params.train.lr == pytest.approx(2e-4)
    assert tiny_params.model.ngf == 8
    assert tiny_params.data.resize == "resize"


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["train"].update(lamda_cycle=5.0), "train.lamda_cycle: unknown key; did you mean "
                                                    "'lambda_cycle'"),
    (lambda r: r.update(sed=1), "sed: unknown key"),
    (lambda r: r["train"].update(lr="2e-4"), "train.lr: got '2e-4', expected a number"),
    (lambda r: r["train"].update(epochs=0), "train.epochs: got 0, must be >= 1"),
    (lambda r: r["train"].update(epochs=2.5), "train.epochs: got 2.5, expected an integer"),
    (lambda r: r["train"].update(gan_loss="wgan"), "train.gan_loss: got 'wgan', allowed: lsgan"),
    (lambda r: r["data"].update(resize=True), "data.resize: got True, expected a string"),
    (lambda r: r["model"].update(ngf=True), "model.ngf: got True, expected an integer"),
    (lambda r: r["data"].update(background_color=[0, 0]), "expected a list of 3"),
    (lambda r: r["data"].update(background_color=[0, 0, 300]),
     "data.background_color[2]: got 300, must be <= 255"),
    (lambda r: r["eval"].update(metrics=["fid", "lpips"]),
     "eval.metrics[1]: got 'lpips', allowed"),
    (lambda r: r["variants"]["ae_init"].update(init="vae"),
     "variants.ae_init.init: got 'vae', allowed: random, ae"),
    (lambda r: r["variants"]["baseline"].update(train={"lr": -1.0}),
     "variants.baseline.train.lr: got -1.0, must be > 0.0"),
    (lambda r: r["variants"]["baseline"].update(model={"ngff": 3}),
     "variants.baseline.model.ngff: unknown key"),
    (lambda r: r.update(variants={}), "variants: got {}, expected a mapping of one or more"),
    (lambda r: r.update(data=[1, 2]), "data: got [1, 2], expected a mapping"),
    (lambda r: r["data"].update(image_size=33), "data.image_size: got 33, must be a multiple "
                                                 "of 4 for model.n_downsampling=2"),
    (lambda r: r["data"].update(image_size=16), "data.image_size: got 16, the discriminator "
                                                 "needs >= 24 with model.n_layers_d=3"),
    (lambda r: r["variants"]["baseline"].update(model={"n_layers_d": 4}),
     "needs >= 48 with variants.baseline.model.n_layers_d=4"),
])
def test_bad_values_name_key_value_and_allowed(tiny_raw, mutate, message):
    mutate(tiny_raw)
    with pytest.raises(ConfigError) as err:
        config.from_dict(tiny_raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_int_is_accepted_where_float_expected(tiny_raw):
    tiny_raw["train"]["lambda_cycle"] = 5
    assert config.from_dict(tiny_raw).train.lambda_cycle == 5.0


def test_variant_overrides_apply(tiny_raw):
    tiny_raw["variants"]["ae_init"]["train"] = {"lambda_cycle": 5.0}
    tiny_raw["variants"]["ae_init"]["model"] = {"n_blocks": 2}
    cfg = config.from_dict(tiny_raw)
    variant, model, train = cfg.variant("ae_init")
    assert (variant.init, model.n_blocks, train.lambda_cycle) == ("ae", 2, 5.0)
    assert cfg.variant("baseline")[2].lambda_cycle == 10.0
    with pytest.raises(ConfigError, match="--variant nope: no such variant"):
        cfg.variant("nope")


def test_load_reports_file_and_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)


def test_fingerprint_changes_with_output_affecting_params(tiny_raw):
    a = config.from_dict(tiny_raw)
    tiny_raw["train"]["lr"] = 1.0e-4
    b = config.from_dict(tiny_raw)
    assert config.fingerprint(a.train) == config.fingerprint(a.train)
    assert config.fingerprint(a.train) != config.fingerprint(b.train)


def test_fingerprint_is_a_hash_of_the_params_as_plain_data(tiny_raw):
    """Fingerprints name trained artefacts (a checkpoint resumes only when its own matches), so
    the same params keep theirs. The pinned value is what the hand-written validator that
    pydantic replaced gave (commit 66a2dee)."""
    assert config.fingerprint(0, {"lr": 0.0002, "epochs": 3}, [1, 2.0], "ae",
                              None) == "1d69c1333aa245dd"
    cfg = config.from_dict(tiny_raw)
    blob = json.dumps([config.to_dict(cfg.train)], sort_keys=True)
    assert config.fingerprint(cfg.train) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    tiny_raw["train"]["lambda_cycle"] = 10  # an int where a float is expected: the same params
    tiny_raw["variants"]["baseline"]["train"] = {"lambda_cycle": 10}  # overrides too
    again = config.from_dict(tiny_raw)
    assert type(again.train.lambda_cycle) is float
    assert type(again.variants["baseline"].train["lambda_cycle"]) is float
    assert config.fingerprint(again.train) == config.fingerprint(cfg.train)


def test_keys_added_later_stay_out_of_fingerprints_at_their_old_behaviour(tiny_raw):
    """A checkpoint made before model.input_skip (or train.halve_d_loss, restart_optimizers)
    existed was fingerprinted without the key: at the old behaviour the section hashes as it
    did then, and any other value changes the hash."""
    cfg = config.from_dict(tiny_raw)
    for section, key in (("model", "input_skip"), ("train", "halve_d_loss"),
                         ("train", "restart_optimizers")):
        plain = config.to_dict(getattr(cfg, section))
        before = {k: v for k, v in plain.items() if k not in config.ADDED_LATER}
        assert config.fingerprint(config.without_added_later(getattr(cfg, section))) == \
            config.fingerprint(before)
        other = {"input_skip": True, "halve_d_loss": False, "restart_optimizers": "parent"}[key]
        assert config.fingerprint(config.without_added_later(plain | {key: other})) != \
            config.fingerprint(before)


def test_flatten_gives_dotted_keys(tiny_params):
    flat = config.flatten({"train": tiny_params.train})
    assert flat["train.lr"] == pytest.approx(2e-4)


def test_registry_names_match_schema_choices():
    from cyclelab.losses import GAN_LOSSES
    from cyclelab.metrics import METRICS
    from cyclelab.models.build import DISCRIMINATORS, GENERATORS
    from cyclelab.models.init import INITS
    from cyclelab.models.layers import NORM_LAYERS
    from cyclelab.training.schedules import SCHEDULES

    assert set(config.GENERATORS) == set(GENERATORS)
    assert set(config.DISCRIMINATORS) == set(DISCRIMINATORS)
    assert set(config.GAN_LOSSES) == set(GAN_LOSSES)
    assert set(config.LR_POLICIES) == set(SCHEDULES)
    assert set(config.NORMS) == set(NORM_LAYERS)
    assert set(config.INITS) == set(INITS)
    assert set(config.METRIC_NAMES) == set(METRICS)


def test_every_auxiliary_loss_has_a_weight_key_that_is_off_by_default():
    """docs/extending.md: a new auxiliary loss needs its train.<weight> key (0 = off)."""
    from cyclelab.losses import AUX_LOSSES

    fields = {f.name: f for f in dataclasses.fields(config.TrainConfig)}
    for aux in AUX_LOSSES:
        assert aux.weight in fields, f"add train.{aux.weight} to config.TrainConfig"
        assert fields[aux.weight].default == 0.0, aux.weight
    assert len({aux.name for aux in AUX_LOSSES}) == len(AUX_LOSSES)


def test_stage_with_typo_fails_before_work_with_one_line(tmp_path, tiny_raw):
    tiny_raw["train"]["lamda_cycle"] = 1.0
    params = write_params(tmp_path / "params.yaml", tiny_raw)
    proc = subprocess.run([sys.executable, str(REPO / "pipeline" / "train.py"), "--variant",
                           "baseline", "--params", str(params)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.lamda_cycle: unknown key" in lines[0]
    assert "Traceback" not in proc.stderr


def test_minimal_params_file_gets_a_baseline_variant():
    cfg = config.from_dict({"seed": 1})
    variant, model, train = cfg.variant("baseline")
    assert (variant.init, model.ngf, train.epochs) == ("random", 16, 12)


@pytest.mark.parametrize("kind", ["seed001", "dual_head", "plain"])
def test_discriminator_size_check_matches_what_the_network_runs(kind, tiny_raw):
    """The smallest image_size the check allows runs a training-mode forward; half is refused
    with one line instead of a crash in the first step (instance norm needs a 2x2 map)."""
    import torch

    from cyclelab.models.build import build_discriminator

    tiny_raw["model"].update(discriminator=kind, n_layers_d=2)
    tiny_raw["data"]["image_size"] = 16
    cfg = config.from_dict(tiny_raw)
    build_discriminator(cfg.model)(torch.randn(2, 3, 16, 16))
    tiny_raw["model"].update(n_layers_d=3)
    with pytest.raises(ConfigError, match="discriminator needs >= 32"):
        config.from_dict(tiny_raw)


def test_finetune_inherits_its_parents_overrides_then_applies_its_own(tiny_raw):
    tiny_raw["variants"]["ae_init"]["train"] = {"lambda_cycle": 5.0, "epochs": 7}
    tiny_raw["variants"]["ae_init"]["model"] = {"n_blocks": 2}
    tiny_raw["finetunes"] = {"ft": {"init": "ae_init", "train": {"lambda_identity": 0.0}},
                             "ft2": {"init": "ft", "train": {"epochs": 1}}}
    cfg = config.from_dict(tiny_raw)
    assert list(cfg.runs) == ["baseline", "ae_init", "ft", "ft2"]
    variant, model, train = cfg.variant("ft2")
    assert variant.init == "ft"
    assert (model.n_blocks, train.lambda_cycle, train.lambda_identity, train.epochs) == (
        2, 5.0, 0.0, 1)


@pytest.mark.parametrize("finetunes, variants, message", [
    ({"ft": {"init": "nope"}}, None, "finetunes.ft.init: got 'nope', expected the variant"),
    ({"ft": {"init": "random"}}, None, "finetunes.ft.init: got 'random'"),
    ({"ft": {"init": "ft"}}, None, "finetunes.ft.init: got 'ft'"),
    ({"a": {"init": "b"}, "b": {"init": "a"}}, None, r"finetunes.a.init: a cycle, a -> b -> a"),
    ({"ft": {"init": "baseline", "model": {"ngf": 8}}}, None,
     "finetunes.ft.model: a finetune keeps its parent's networks"),
    ({"baseline": {"init": "ae_init"}}, None, "finetunes.baseline: the name is also under"),
    ({}, {"ft": {"init": "baseline"}},
     "variants.ft.init: got 'baseline', allowed: random, ae; to fine-tune 'baseline'"),
])
def test_bad_finetunes_are_one_line_naming_the_key(tiny_raw, finetunes, variants, message):
    tiny_raw["finetunes"] = finetunes
    tiny_raw["variants"].update(variants or {})
    with pytest.raises(ConfigError, match=message):
        config.from_dict(tiny_raw)


def test_empty_finetunes_are_allowed(tiny_raw):
    tiny_raw["finetunes"] = None
    assert config.from_dict(tiny_raw).finetunes == {}


def test_the_seed_reports_params_in_the_docs_are_valid():
    """docs/training.md's block of the seed reports' settings (seeds 001 v1-v3, 002, 004)
    validates."""
    import re

    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    block = re.search(r"The seed reports as variants.*?```yaml\n(.*?)```", text, re.S)
    assert block, "docs/training.md: the seed reports' params block is gone"
    seeds = yaml.safe_load(block.group(1))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["variants"], raw["finetunes"] = seeds["variants"], seeds["finetunes"]
    cfg = config.from_dict(raw)
    assert {"seed001_v1", "seed001_v2", "seed001_v3", "seed004_task1"} <= set(cfg.variants)
    assert cfg.variant("seed002_identity")[2].lambda_identity == 1.0


def test_run_seeds_one_checked_seed_or_all_of_them(tiny_raw):
    from cyclelab.stage import run_seeds

    tiny_raw["study"] = {"seeds": [3, 5]}
    cfg = config.from_dict(tiny_raw)
    assert run_seeds(cfg, None, False) == [3] and run_seeds(cfg, 5, False) == [5]
    assert run_seeds(cfg, None, True) == [3, 5]
    with pytest.raises(ConfigError, match="--seed 4: not in study.seeds"):
        run_seeds(cfg, 4, False)
    with pytest.raises(ConfigError, match="--seed 5 and --all-seeds: give one of them"):
        run_seeds(cfg, 5, True)


def _refusal(raw) -> str:
    """The one-line ConfigError ``raw`` gets."""
    with pytest.raises(ConfigError) as refused:
        config.from_dict(raw)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_unet_depth_is_checked_at_the_size_the_networks_train_on(tiny_raw):
    """The U-Net is built for data.image_size (256 px: eight halvings) and trains on
    train.crop_size crops: 224 px crops crash its first step, so validation refuses them."""
    import torch

    from cyclelab.models.build import build_generator

    tiny_raw["data"]["image_size"] = 256
    tiny_raw["model"].update(generator="unet", ngf=2)
    tiny_raw["train"].update(crop_size=224)
    message = _refusal(tiny_raw)
    assert message.startswith("variants.baseline: train.crop_size 224 (the side the networks "
                              "train on) must be a multiple of 256 (the U-Net built for "
                              "data.image_size 256 halves it 8 times)")
    tiny_raw["train"].update(load_size=286, crop_size=256)  # the official code's 286 -> 256
    config.from_dict(tiny_raw)
    # What the check stands for, at 64 px (six halvings): 48-px crops do not fit.
    tiny_raw["data"]["image_size"] = 64
    tiny_raw["train"].update(load_size=0, crop_size=48)
    assert "must be a multiple of 64" in _refusal(tiny_raw)
    G = build_generator(config.ModelConfig(generator="unet", ngf=2), 64)
    with pytest.raises((RuntimeError, ValueError)):  # a map that halves to nothing
        G(torch.randn(1, 3, 48, 48))
    tiny_raw["model"]["generator"] = "resnet"  # two stride-2 convolutions take 48 px
    config.from_dict(tiny_raw)


def test_training_size_is_crop_then_load_then_image_size(tiny_raw):
    cfg = config.from_dict(tiny_raw)
    assert config.training_size(cfg.data, cfg.train) == (32, "data.image_size")
    tiny_raw["train"].update(load_size=40)
    cfg = config.from_dict(tiny_raw)
    assert config.training_size(cfg.data, cfg.train) == (40, "train.load_size")
    tiny_raw["train"].update(crop_size=32)
    cfg = config.from_dict(tiny_raw)
    assert config.training_size(cfg.data, cfg.train) == (32, "train.crop_size")


@pytest.mark.parametrize("size", [32, 48, 64, 96])
def test_the_unet_built_for_a_size_halves_it_as_often_as_the_size_rule_says(size):
    """models.sizes.unet_depth is the rule both the schema and the U-Net use: the network built
    for ``size`` has that many stride-2 convolutions and maps ``size`` px back to ``size`` px."""
    import torch
    from torch import nn

    from cyclelab.models.build import build_generator
    from cyclelab.models.sizes import unet_depth

    net = build_generator(config.ModelConfig(generator="unet", ngf=4), image_size=size)
    strided = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == unet_depth(size) == {32: 5, 48: 4, 64: 6, 96: 5}[size]
    with torch.no_grad():
        assert net(torch.zeros(1, 3, size, size)).shape == (1, 3, size, size)


def test_config_and_packages_import_no_torch_for_the_size_rules():
    """The schema asks the networks' size rules at every stage start without loading torch."""
    import subprocess
    import sys

    code = ("import sys, cyclelab.config, cyclelab.models.sizes; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_discriminators_and_autoencoders_are_checked_at_the_training_size(tiny_raw):
    tiny_raw["train"].update(crop_size=16)  # a 70x70 PatchGAN (n_layers_d 3) needs 24 px
    assert _refusal(tiny_raw) == (
        "variants.baseline: train.crop_size: got 16, the discriminator needs >= 24 with "
        "model.n_layers_d=3 (patch); lower n_layers_d or raise crop_size")
    tiny_raw["model"].update(n_layers_d=2)
    config.from_dict(tiny_raw)
    # pretrain_ae trains on the same crops: seed 000's network halves them three times.
    tiny_raw["ae"].update(kind="seed000")
    tiny_raw["train"].update(load_size=36, crop_size=28)
    assert _refusal(tiny_raw).startswith("train.crop_size: got 28, must be a multiple of 8 "
                                         "for ae.kind=seed000")


def test_kaiming_init_refuses_a_gain_it_would_ignore(tiny_raw):
    tiny_raw["model"].update(init="kaiming")
    config.from_dict(tiny_raw)
    tiny_raw["model"].update(init_gain=0.5)
    assert _refusal(tiny_raw).startswith("model.init_gain: got 0.5, but init kaiming takes no "
                                         "gain")
    tiny_raw["model"].update(init="normal")
    config.from_dict(tiny_raw)
    tiny_raw["model"].update(init_gain=0.02)
    tiny_raw["variants"]["baseline"]["model"] = {"init": "kaiming", "init_gain": 1.0}
    assert _refusal(tiny_raw).startswith("variants.baseline.model.init_gain: got 1.0")


PARAMS_DOC = REPO / "docs" / "params.md"


def test_committed_params_reference_is_current():
    assert PARAMS_DOC.read_text(encoding="utf-8") == config.reference_markdown(), (
        "docs/params.md is out of date with the schema in src/cyclelab/config.py; regenerate "
        "it: .venv/bin/python -m cyclelab.config --markdown > docs/params.md")


def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """The schema's leaf keys, walked here independently of config.params()."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys += _leaf_keys(hint, key + ".")
        elif typing.get_origin(hint) is dict and dataclasses.is_dataclass(typing.get_args(hint)[1]):
            keys += [key, *_leaf_keys(typing.get_args(hint)[1], key + ".<name>.")]
        else:
            keys.append(key)
    return keys


def test_params_reference_lists_every_key_with_its_allowed_values():
    rows = {line.split("`")[1]: line for line in config.reference_markdown().splitlines()
            if line.startswith("| `")}
    keys = _leaf_keys(config.Config)
    assert len(keys) > 100 and "data.digits.train_per_domain" in keys
    assert set(keys) == set(rows)
    assert "`lsgan` \\| `vanilla`" in rows["train.gan_loss"]
    assert "≥ 8; ≤ 1024" in rows["data.image_size"]
    assert "each `color` \\| `translation` \\| `cutout`" in rows["train.diffaugment"]
    assert "`0.0002`" in rows["train.lr"]
    assert "`1.0e-5`" in rows["train.lr_min"]  # a float PyYAML reads back as a float


@pytest.mark.parametrize("mutate, line", [
    (lambda r: r["train"].update(lr="2e-4"),
     "train.lr: got '2e-4', expected a number (PyYAML reads 1e-3 as a string: write 1.0e-3)"),
    (lambda r: r["train"].update(lr=float("nan")), "train.lr: got nan, expected a finite number"),
    (lambda r: r["model"].update(generator=3), "model.generator: got 3, expected a string"),
    (lambda r: r.update(study={"seeds": [1, -1]}), "study.seeds[1]: got -1, must be >= 0"),
    (lambda r: r["variants"].update({"a/b": {}}),
     "variants: got the name 'a/b'; names start with a letter or digit and use ASCII letters, "
     "digits, '_' and '-' only"),
    (lambda r: r["variants"]["baseline"].update(train={"lr": "1e-3"}),
     "variants.baseline.train.lr: got '1e-3', expected a number (PyYAML reads 1e-3 as a "
     "string: write 1.0e-3)"),
    (lambda r: r["data"]["digits"].update(train_per_domian=3),
     "data.digits.train_per_domian: unknown key; did you mean 'train_per_domain'? allowed "
     "here: train_per_domain, test_per_domain"),
    (lambda r: r["variants"]["baseline"].update(model={"nfg": 3}),
     "variants.baseline.model.nfg: unknown key; did you mean 'ngf'? allowed here: generator,"),
])
def test_pydantic_errors_read_as_one_line_with_key_value_and_what_is_allowed(tiny_raw, mutate,
                                                                             line):
    """pydantic validates; :mod:`cyclelab.config_errors` words its first error as before: the key
    path (list items as ``[i]``), the value as written, the allowed values or the closest key."""
    mutate(tiny_raw)
    assert _refusal(tiny_raw).startswith(line)


def test_configs_are_frozen_and_replace_validates(tiny_params):
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny_params.train.lr = 1.0  # type: ignore[misc]
    assert dataclasses.replace(tiny_params.train, epochs=3).epochs == 3
    with pytest.raises(ValueError, match="greater than or equal to 1"):  # a caller's bug
        dataclasses.replace(tiny_params.train, epochs=0)


def test_empty_sections_and_entries_take_the_defaults(tiny_raw):
    tiny_raw.update(study=None, finetunes=None)
    tiny_raw["variants"]["baseline"] = None
    cfg = config.from_dict(tiny_raw)
    assert cfg.study == config.StudyConfig() and cfg.finetunes == {}
    assert cfg.variants["baseline"] == config.VariantConfig()
    assert config.from_dict(None) == config.from_dict({})


def test_params_table_is_read_from_the_pydantic_schema():
    rows = {p.key: p for p in config.params()}
    assert rows["train.lr"][1:] == ("float", 2.0e-4, (), (("gt", 0.0), ("le", 1.0)), "")
    assert rows["data.pad_color"].bounds == (("length", 3), ("item_ge", 0), ("item_le", 255))
    assert rows["train.gan_loss"].choices == config.GAN_LOSSES
    assert rows["eval.metrics"].bounds == (("item_choices", config.METRIC_NAMES),)
    assert rows["study.seeds"].bounds == (("item_ge", 0), ("item_le", 2**31 - 1))
    assert rows["variants.<name>.train"].type == rows["variants"].type == "mapping"
