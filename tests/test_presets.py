"""Study presets (studies/*.yaml, cyclelab.presets, ``python -m cyclelab study``).

The report tables below are written from the seed reports' text (../shared/seeds/000_*.txt,
quoted), not from the preset files: a preset that drifts from its report fails here."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from cyclelab import cli, config, presets
from cyclelab.errors import UserError
from tests.conftest import REPO
from tests.tinyrepo import make_repo, run_dag_in_process, sh

# seeds/000: "rescaled ... to 32x32"; "only used 3 blocks"; "Sequential: 3-25 ... 4,297,219"
# (the generator); "a default value of 1 in the batch size for both the AE and the CycleGAN";
# "a learning rate of 1e-6 for the AE"; "trained the AE for 25 epochs and the CycleGAN for 15
# epochs"; "after every fifth epoch"; the apples and oranges dataset; its AE network; "No VAE"
# against "VAE" (its AE).
SEED000 = {
    "data.dataset": "apple2orange", "data.image_size": 32, "model.generator": "resnet",
    "model.n_blocks": 3, "ae.kind": "seed000", "ae.lr": 1e-6, "ae.batch_size": 1,
    "ae.epochs": 25, "train.batch_size": 1, "train.epochs": 15, "eval.every_k_epochs": 5,
}
# Its second experiment: "increased the number of epochs the AE trained for to 500 epochs, and
# we trained the CycleGAN for 75 epochs".
# seeds/004 task 1: "an image size of 256x256"; "Random seed: 42"; "Learning rate: 2e-4";
# "Betas: (0.5, 0.999)"; "λgp: 10.0", "λcyc: 10.0", "λid: 5.0", "λfm: 5.0", "λgan: 1.0";
# "Cosine Annealing Warm Restarts", "t-0: 10", "t-mult: 2", "min-lr: 1e-5"; "a simple 99/1
# split on training/validation data"; "BatchSizes = [3, 2, 1] Epochs = [100, 50, 30]
# EvalThreshold = [10, 5, 3]"; no augmentations; spectral norm, PatchGAN and global heads;
# relativistic loss; FID, IS and GMS in its table.
SEED004 = {
    "data.dataset": "selfie2anime", "data.image_size": 256, "seed": 42, "train.lr": 2e-4,
    "train.beta1": 0.5, "train.beta2": 0.999, "train.lambda_gp": 10.0,
    "train.lambda_cycle": 10.0, "train.lambda_identity": 5.0, "train.identity_weight": "absolute",
    "train.lambda_fm": 5.0, "train.lambda_gan": 1.0, "train.lr_policy": "cosine_restarts",
    "train.lr_t0": 10, "train.lr_t_mult": 2, "train.lr_min": 1e-5, "data.val_fraction": 0.01,
    "train.stage_batch_sizes": [3, 2, 1], "train.stage_epochs": [100, 50, 30],
    "train.stage_eval_every": [10, 5, 3], "train.flip": False, "train.diffaugment": [],
    "model.discriminator": "dual_head", "model.generator": "attention",
    "train.gan_loss": "relativistic", "train.stage_select": "gms_or_kid",  # its GMS selection
}
# seeds/003 task 1: "image size 28 x 28"; "increasing the size of the dataset from 100 images to
# 500 images"; "2 conv layers, 2 ResNETs and 2 deConvs on the generator and the discriminator
# had 3 conv layers and a reflection padding"; "activation for which Leaky ReLU [9] was used";
# filters "8 and 16 ... 16 and 32 and 32 and 64, the results improved"; "0.0002 as the
# original setting for the generators"; "We turned back to using Adam for all the optimizers".
SEED003 = {
    "data.dataset": "mnist2colored_mnist", "data.image_size": 28, "data.max_per_domain": 500,
    "train.lambda_identity": 0.0,
    "model.generator": "resnet", "model.n_blocks": 2, "model.ngf": 32, "model.ndf": 64,
    "model.n_layers_d": 1, "model.activation_g": "leaky_relu", "model.padding_d": "reflect",
    "model.upsample": "transpose", "train.lr": 2e-4, "train.optimizer_g": "adam",
    "train.optimizer_d": "adam",
}
# seeds/001: "We use the selfie2anime dataset"; its 2x2-stride D ends "16x16" (256 px halved four
# times); "We trained the baseline model for 86 complete epochs"; "While the original paper
# mentions the LSGAN loss, we did not train the baseline model using this flag" (vanilla);
# G "channels ... increase from 3 to 64 to 128 to 256", "The next two have kernel size 3, and a
# stride of 2", "Apply instance normalization", "Apply a ReLU"; D "from 3 to 64 ... to 512";
# "use the same learning rate and optimizer" (as the paper).
SEED001 = {
    "data.dataset": "selfie2anime", "data.image_size": 256, "train.epochs": 86,
    "train.gan_loss": "vanilla", "model.ngf": 64, "model.ndf": 64, "model.n_downsampling": 2,
    "model.norm": "instance", "model.activation_g": "relu", "train.lr": 2e-4,
    "train.optimizer_g": "adam", "train.optimizer_d": "adam",
}
# seeds/001's versions: v1 "least-squares loss", "cycle losses ... weighted 5 times more than the
# adversarial loss, and identity losses ... 10 times more", "a cache of 25", "every 3 iterations",
# "replace a contiguous section of 5 images", "we draw 5 samples which are contiguous",
# "Each of the 8 residually connected blocks", "pixel shuffling", D "kernel size of 2, stride of
# 2", "We trained version 1 for 56 epochs"; v2 "cycle loss 10 times more ... identity loss 5
# times more", "5 random generated samples are drawn uniformly", "increase the number of blocks
# to be 9", "We set lambda = 10" (its GP on E(D(x)-1)^2 + E D(G(z))^2, not halved); v3
# "identical to the second version, but without gradient penalty", "We trained version 3 for 75
# Epochs". Batch 5 is implied, not stated: "the newest images replace a contiguous section of 5
# images"; D samples "a batch of images from the cache".
_S001 = {"train.gan_loss": "lsgan", "train.identity_weight": "absolute", "train.pool": "seed001",
         "train.pool_size": 25, "train.cache_every": 3, "train.cache_block": 5,
         "train.batch_size": 5, "model.generator": "pixelshuffle",
         "model.discriminator": "seed001", "train.halve_d_loss": False}
SEED001_VERSIONS = {
    "baseline": {"train.epochs": 86, "train.gan_loss": "vanilla", "train.pool": "paper",
                 "train.halve_d_loss": True},
    "v1": {**_S001, "train.epochs": 56, "train.lambda_cycle": 5.0, "train.lambda_identity": 10.0,
           "train.cache_draw": "contiguous", "train.lambda_gp": 0.0, "model.n_blocks": 8},
    "v2": {**_S001, "train.lambda_cycle": 10.0, "train.lambda_identity": 5.0,
           "train.cache_draw": "random", "train.lambda_gp": 10.0, "model.n_blocks": 9},
    "v3": {**_S001, "train.epochs": 75, "train.lambda_cycle": 10.0, "train.lambda_identity": 5.0,
           "train.cache_draw": "random", "train.lambda_gp": 0.0, "model.n_blocks": 9},
}
# seeds/002: "We trained our model over the cityscapes dataset"; "2975 real images and also 2975
# segmentation images" (all trained on: no validation carved); "Johnson et al [4] model";
# "6 blocks for 128×128 images"; "two fractionally-strided convolutions"; "70×70 PatchGANs";
# "instance normalization"; "N(0, 0.02)"; "a learning rate of 0.0002"; "the same learning rate
# for the first 100 epochs and linearly decay the rate to zero over the next 100 epochs"; "We
# trained our model for 200 epochs"; "Cycle Consistency Loss Only, where we assumed λIdentity = 0".
SEED002 = {
    "data.dataset": "cityscapes", "data.val_fraction": 0.0, "model.generator": "resnet",
    "model.n_blocks": 6, "model.n_downsampling": 2, "model.discriminator": "patch",
    "model.n_layers_d": 3, "model.norm": "instance", "model.init": "normal",
    "model.init_gain": 0.02, "train.lr": 2e-4, "train.lr_d": 2e-4, "train.epochs": 200,
    "train.epochs_decay": 100, "train.lr_policy": "linear", "train.lambda_identity": 0.0,
}
# seeds/003 task 2: "format 2 of the SVHN dataset, which consists of single SVHN digits cropped
# to 32x32"; "increase the size of the MNIST digits by zero padding"; "2 conv layers, 2 ResNETs
# and 2 deConvs"; "activation for which Leaky ReLU [9] was used"; "deconv2d performs transposed
# convolution"; "reintroduce reflection padding"; "a random 9x9 crop" ("9x9 for the SVHN"); "the
# discriminator had 3 conv layers"; "We turned back to using Adam for all the optimizers"; "0.0002
# as the original setting for the generators"; the objective "L_GAN + L_GAN + λ L_cyc" (no
# identity term).
SEED003_SVHN = {
    "data.dataset": "mnist2svhn", "data.image_size": 32, "data.resize": "pad_only",
    "data.pad_color": [0, 0, 0], "model.generator": "resnet", "model.n_blocks": 2,
    "model.n_downsampling": 2, "model.n_layers_d": 1, "model.activation_g": "leaky_relu",
    "model.upsample": "transpose", "model.padding_d": "reflect",
    "model.discriminator": "random_crop", "model.d_crop": 9, "train.optimizer_g": "adam",
    "train.optimizer_d": "adam", "train.lr": 2e-4, "train.lambda_identity": 0.0,
}
# seeds/003 section 5.6's changes, each against its final network: "from the full image to a random
# 9x9 crop" (a "scalar output" D); "The reflection padding was removed"; "Vanilla Stochastic
# Gradient Descent".
SEED003_SVHN_ABLATIONS = {
    "full_image_d": {"model.discriminator": "plain"},
    "zero_pad_d": {"model.padding_d": "zeros"},
    "sgd_d": {"train.optimizer_d": "sgd", "train.momentum": 0.0},
}
# seeds/004 task 2: "our Pokémon sprite sizes are only 96×96"; "remove the background of the animal
# images ... into white background" (the sprites "are placed on a white background"); "use the
# normal and front-facing versions"; "at most represented 6 times"; "A simple 90/10 train-test
# split"; "a 99/1 split ... 49 will be used for validation"; "a similar architecture as the one used
# in Task 1"; "removed the last downsampling layer ... [B, 256, 12, 12]"; "Patch", "Least Squares";
# eq. 2.1 "L_GAN + λcyc L_cyc + λid L_id + λedge L_edge + λcolor L_color" (no GP, no feature loss).
SEED004_POKEMON = {
    "data.dataset": "animals2pokemon", "data.image_size": 96, "data.background": "rembg",
    "data.background_domains": ["A"], "data.background_color": [255, 255, 255],
    "data.sprites.views": ["front"], "data.sprites.palettes": ["normal"],
    "data.sprites.max_per_pokemon": 6, "data.test_fraction": 0.1, "data.val_fraction": 0.01,
    "model.generator": "attention", "model.discriminator": "dual_head", "model.ndf": 64,
    "model.n_layers_d": 2, "model.norm": "instance", "train.gan_loss": "lsgan",
    "train.lambda_gp": 0.0, "train.lambda_fm": 0.0,
}
# real32 (ours, no seed report): the search's R3 (docs/studies/beyond-seed000.md), on seeds/000's
# data and size; any drift from the searched configuration fails here.
REAL32 = {
    "data.dataset": "apple2orange", "data.image_size": 32, "data.val_fraction": 0.1,
    "model.generator": "resnet", "model.n_blocks": 3, "model.ngf": 32, "model.ndf": 64,
    "model.n_layers_d": 2, "model.upsample": "resize_conv", "model.input_skip": True,
    "train.epochs": 20, "train.batch_size": 1, "train.lambda_identity": 0.5,
    "train.diffaugment": ["translation", "cutout"], "train.ema": 0.999,
    "train.load_size": 36, "train.crop_size": 32,
}
REPORTS = {
    "real32": REAL32,
    "seed000": SEED000,
    "seed001": SEED001,
    "seed002": SEED002,
    "seed000-long": {**SEED000, "ae.epochs": 500, "train.epochs": 75},
    "seed003": SEED003,
    "seed003-svhn": SEED003_SVHN,
    "seed004": SEED004,
    "seed004-pokemon": SEED004_POKEMON,
}
# The variants each report compares, by their init.
VARIANTS = {"real32": {"real32": "random"},
            "seed000": {"baseline": "random", "ae_init": "ae"},
            "seed001": {v: "random" for v in ("baseline", "v1", "v2", "v3")},
            "seed002": {"cycle_only": "random"},
            "seed000-long": {"baseline": "random", "ae_init": "ae"},
            "seed003": {v: "random" for v in (
                "reference", "blocks6", "blocks9", "plain_d", "random_crop_d", "filters_8_16",
                "filters_16_32", "lr_d_1e-4", "sgd_d", "zero_pad_d")},
            "seed003-svhn": {v: "random" for v in (
                "reference", "full_image_d", "zero_pad_d", "sgd_d", "narrow_g")},
            "seed004": {"attention_staged": "random"},
            "seed004-pokemon": {"attention_lsgan": "random"}}
# seeds/003's ablations, each against its final network: "2, 6, and 9 ResNet layer"; "Patch
# Discriminator VS Vanilla Discriminator" ("a scalar output"); "only taking one cropped image
# ... 8x8 for the MNIST"; filters 8/16 and 16/32; "the learning rate to 0.0001" for D; "Vanilla
# Stochastic Gradient Descent"; "The reflection padding was removed".
SEED003_ABLATIONS = {
    "blocks6": {"model.n_blocks": 6}, "blocks9": {"model.n_blocks": 9},
    "plain_d": {"model.discriminator": "plain"},
    "random_crop_d": {"model.discriminator": "random_crop", "model.d_crop": 8},
    "filters_8_16": {"model.ngf": 8, "model.ndf": 16},
    "filters_16_32": {"model.ngf": 16, "model.ndf": 32},
    "lr_d_1e-4": {"train.lr_d": 1e-4, "train.lr": 2e-4},
    "sgd_d": {"train.optimizer_d": "sgd", "train.momentum": 0.0},
    "zero_pad_d": {"model.padding_d": "zeros"},
}
SEED000_GENERATOR_PARAMS = 4_297_219  # the report's printed count for "Sequential: 3-25"


def test_every_preset_is_compared_with_its_report():
    assert presets.names(REPO) == sorted(REPORTS)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_preset_sets_what_its_report_states(name):
    preset = presets.load(name, REPO)
    flat = config.flatten(config.from_dict(preset.params))
    assert {k: flat[k] for k in REPORTS[name]} == REPORTS[name]
    variants = {k: v["init"] for k, v in preset.params["variants"].items()}
    assert variants == VARIANTS[name]
    if "is" in flat["eval.metrics"]:
        assert {"is", "gms"} <= set(flat["eval.metrics"])
    assert len(flat["study.seeds"]) >= 3  # the significance rule needs replicates


@pytest.mark.parametrize(("preset", "variants"), [("seed001", SEED001_VERSIONS),
                                                  ("seed003", SEED003_ABLATIONS),
                                                  ("seed003-svhn", SEED003_SVHN_ABLATIONS)])
def test_variants_are_the_reports_versions_and_ablations(preset, variants):
    cfg = config.from_dict(presets.load(preset, REPO).params)
    for name, expected in variants.items():
        _, model, train = cfg.variant(name)
        resolved = {"model": model, "train": train}
        for key, value in expected.items():
            section, field = key.split(".")
            assert getattr(resolved[section], field) == value, (name, key)


# Its second phase: "we used the weights from the previous model (the model with no Identity
# loss)"; "λIdentity was not 0 and was the same value as λCycle"; "another 70 epochs"; "The only
# difference in the two hyper-parameters" is λIdentity (so lr stays 0.0002). The optimiser
# restart is the preset's assumption: the report is silent.
def test_seed002_finetunes_its_cycle_only_variant_with_identity_equal_to_cycle():
    from cyclelab.losses import identity_weight

    cfg = config.from_dict(presets.load("seed002", REPO).params)
    assert {name: f.init for name, f in cfg.finetunes.items()} == {"cycle_identity": "cycle_only"}
    assert cfg.variant("cycle_only")[2].lambda_identity == 0.0
    _, _, train = cfg.variant("cycle_identity")
    assert train.epochs == 70
    assert identity_weight(train.lambda_cycle, train.lambda_identity,
                           train.identity_weight) == train.lambda_cycle == 10.0
    assert train.lr == train.lr_d == 2e-4
    assert train.restart_optimizers == "parent" and train.epochs_decay == 0


def test_seed003_svhn_narrow_generator_and_seed004_pokemon_consistency_losses():
    # seeds/003 5.6: G's features "drastically increased" (narrow_g is the before); seeds/004
    # task 2's eq. 2.1 names edge and colour consistency, without weights.
    cfg = config.from_dict(presets.load("seed003-svhn", REPO).params)
    assert cfg.variant("narrow_g")[1].ngf < cfg.variant("reference")[1].ngf
    train = config.from_dict(presets.load("seed004-pokemon", REPO).params).train
    assert train.lambda_edge > 0 and train.lambda_color > 0


def test_seed000_generator_has_the_reports_parameter_count():
    from cyclelab.models.build import build_generator, count_parameters

    cfg = config.from_dict(presets.load("seed000", REPO).params)
    net = build_generator(cfg.model, image_size=cfg.data.image_size)
    assert count_parameters(net) == SEED000_GENERATOR_PARAMS


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_preset_sets_every_key_of_the_schema(name):
    """Nothing falls through from the defaults: every leaf key is in the file."""
    assert presets.missing_keys(presets.load(name, REPO).params) == []


def test_missing_keys_names_a_key_left_out():
    params = presets.load("seed000", REPO).params
    del params["train"]["lr"], params["eval"]
    missing = presets.missing_keys(params)
    assert "train.lr" in missing and "eval.fid_cycle" in missing and "train.lr_d" not in missing


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_line_says_where_its_value_comes_from(name):
    """Each key line carries a comment (report, paper, ours or unused)."""
    lines = (REPO / "studies" / f"{name}.yaml").read_text().splitlines()
    body = lines[next(i for i, ln in enumerate(lines) if ln.startswith("seed:")):]
    keyed = [ln for ln in body if ln.strip() and not ln.lstrip().startswith("#")
             and not ln.rstrip().endswith(":")]
    unannotated = [ln for ln in keyed if "#" not in ln]
    assert unannotated == []
    sources = {ln.split("#", 1)[1].split()[0].rstrip(":") for ln in keyed}
    assert sources <= {"report", "paper", "ours", "unused"}


def test_list_shows_every_preset_with_report_dataset_networks_budget_times(capsys,
                                                                          monkeypatch):
    monkeypatch.chdir(REPO)
    assert cli.main(["study", "--list"]) == 0
    out = capsys.readouterr().out
    for name in REPORTS:
        assert f"python -m cyclelab study {name}\n" in out + "\n"
    for field in ("report:", "dataset:", "networks:", "budget:", "cpu_time:", "gpu_time:"):
        assert out.count(field) == len(REPORTS)
    assert "seeds/000" in out


def test_unknown_preset_is_one_line_naming_the_known_ones(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert cli.main(["study", "seed00"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'seed00'" in err and "seed000" in err and "--list" in err


def test_preset_with_a_bad_value_names_the_file_and_key(tmp_path):
    (tmp_path / "studies").mkdir()
    raw = yaml.safe_load((REPO / "studies" / "seed000.yaml").read_text())
    raw["train"]["lr"] = "2e-4"
    (tmp_path / "studies" / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=r"studies/bad.yaml: .*train\.lr"):
        presets.load("bad", tmp_path)
    del raw["preset"]
    (tmp_path / "studies" / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="needs a 'preset:' block"):
        presets.load("bad", tmp_path)


def test_smoke_overlay_keeps_the_studys_variants_and_metrics():
    full, smoke = presets.load("seed000", REPO), presets.load("seed000", REPO, smoke=True)
    assert smoke.experiment == "seed000-smoke"
    assert smoke.params["variants"] == full.params["variants"]
    assert smoke.params["eval"]["metrics"] == full.params["eval"]["metrics"]
    assert smoke.params["eval"]["fid_cycle"] is True
    assert smoke.params["data"]["dataset"] == "digits" and smoke.params["train"]["epochs"] == 1


def _git_repo(path):
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def test_refuses_to_overwrite_uncommitted_params(tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "seed000.yaml").write_text(
        (REPO / "studies" / "seed000.yaml").read_text())
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    _git_repo(tmp_path)
    (tmp_path / "params.yaml").write_text("seed: 1\n")  # a user's edit
    with pytest.raises(UserError, match="params.yaml has uncommitted edits"):
        presets.run("seed000", root=tmp_path)
    assert (tmp_path / "params.yaml").read_text() == "seed: 1\n"
    # A params.yaml that a study wrote is a copy of a committed preset: replaced freely.
    (tmp_path / "params.yaml").write_text(
        presets.params_text(presets.load("seed000", tmp_path)))
    presets.check_params_file(tmp_path / "params.yaml")


def test_dry_run_prints_the_params_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    before = (REPO / "params.yaml").read_text()
    assert cli.main(["study", "seed000", "--smoke", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert (REPO / "params.yaml").read_text() == before
    assert "dvc exp run -n seed000-smoke" in out.err
    written = yaml.safe_load(out.out)
    assert written == presets.load("seed000", REPO, smoke=True).params


def smoke_groups() -> list[list[str]]:
    """The presets grouped by identical smoke params (seed000-long differs from seed000 only in
    the epochs the smoke override replaces, and its name in study.preset, which only picks the
    seed report the report opens with): one run covers a group."""
    groups: dict[str, list[str]] = {}
    for name in presets.names(REPO):
        params = presets.load(name, REPO, smoke=True).params
        params["study"] = {k: v for k, v in params["study"].items() if k != "preset"}
        key = json.dumps(params, sort_keys=True)
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def assert_report_opens_with_its_seed_report(repo: Path, name: str) -> None:
    """The report opens with the seed report, before our results (a preset of ours has none)."""
    seed = presets.load(name, REPO).seed_report
    summary = (repo / "reports" / "summary.md").read_text(encoding="utf-8")
    if seed is None:
        assert "Seed report" not in summary
    else:
        assert summary.index(f"Seed report ({seed.report})") < summary.index("doing nothing")


# The presets that also run as a named `dvc exp run` (the wiring every preset shares): seed004,
# a seed study with one variant and staged training, and real32 (ours, no seed report; issue
# #19 asks for its run); the others run in-process.
EXP_RUN = ("real32", "seed004")


@pytest.mark.slow
@pytest.mark.parametrize("name", EXP_RUN)
def test_a_preset_runs_as_a_named_dvc_experiment_tagged_in_mlflow(name, tmp_path):
    """`python -m cyclelab study NAME --smoke` as a user runs it: `dvc exp run -n NAME-smoke`,
    every variant scored, the report built (opening with the seed report where the preset has
    one), `dvc exp show` naming it, MLflow runs tagged."""
    repo = make_repo(tmp_path / "repo")
    proc = sh(["python", "-m", "cyclelab", "study", name, "--smoke"], repo, timeout=900)
    assert f"dvc exp run -n {name}-smoke" in proc.stdout
    for variant in presets.load(name, REPO, smoke=True).params["variants"]:
        assert json.loads((repo / "reports" / "metrics" / f"{variant}.json").read_text())
    assert (repo / "reports" / "index.html").is_file()
    assert_report_opens_with_its_seed_report(repo, name)
    shown = sh(["dvc", "exp", "show", "--no-pager", "--json"], repo).stdout
    names_shown = {e.get("name") for rev in json.loads(shown)
                   for e in (rev.get("experiments") or []) for e in e.get("revs", [])}
    assert f"{name}-smoke" in names_shown
    with sqlite3.connect(repo / "mlflow.db") as db:
        tagged = {r[0] for r in db.execute("SELECT value FROM tags WHERE key = 'study'")}
    assert tagged == {f"{name}-smoke"}


@pytest.mark.slow
@pytest.mark.parametrize("group", [g for g in smoke_groups() if not set(EXP_RUN) & set(g)],
                         ids=lambda group: "+".join(group))
def test_every_preset_runs_its_whole_dag_with_the_smoke_override(group, tmp_path, monkeypatch):
    """Each other preset's whole DAG, smoke-sized: the stages `dvc repro` would run for its
    params, in DVC's order, through the real stage code in this process (the DVC wiring they
    share is the named experiment above); every variant trained and scored, the report built."""
    params = presets.load(group[0], REPO, smoke=True).params
    repo = make_repo(tmp_path / "repo", params)
    ran = run_dag_in_process(repo, monkeypatch)
    for variant in params["variants"]:
        assert f"train --variant {variant} --seed 0" in ran
        assert json.loads((repo / "reports" / "metrics" / f"{variant}.json").read_text())
    assert ran[-1] == "report" and (repo / "reports" / "index.html").is_file()
    assert_report_opens_with_its_seed_report(repo, group[0])


def test_smoke_groups_cover_every_preset_once():
    groups = smoke_groups()
    assert sorted(n for g in groups for n in g) == presets.names(REPO)
    assert all(sum(name in g for g in groups) == 1 for name in EXP_RUN)


def test_smoke_trains_one_epoch_in_variants_that_set_their_own_epochs():
    full, smoke = presets.load("seed001", REPO), presets.load("seed001", REPO, smoke=True)
    assert {n: v["train"].get("epochs") for n, v in full.params["variants"].items()} == {
        "baseline": None, "v1": 56, "v2": 75, "v3": 75}
    assert {n: v["train"].get("epochs") for n, v in smoke.params["variants"].items()} == {
        "baseline": None, "v1": 1, "v2": 1, "v3": 1}
    assert presets.load("seed002", REPO, smoke=True).params["finetunes"]["cycle_identity"][
        "train"]["epochs"] == 1


def test_smoke_keeps_the_stages_of_staged_training_one_epoch_each():
    smoke = presets.load("seed004", REPO, smoke=True).params["train"]
    assert smoke["stage_batch_sizes"] == [3, 2, 1]
    assert smoke["stage_epochs"] == [1, 1, 1] and smoke["stage_eval_every"] == [1, 1, 1]
    assert presets.load("seed000", REPO, smoke=True).params["train"]["stage_epochs"] == []


def test_readme_lists_every_preset():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert [n for n in presets.names(REPO) if f"| `{n}` |" not in readme] == []


@pytest.mark.parametrize("name", [n for n in sorted(REPORTS) if n.startswith(("seed001", "seed002",
                                                                               "seed004"))])
def test_preset_whose_data_needs_a_login_says_what_to_fetch_in_one_line(name, tmp_path,
                                                                        monkeypatch):
    """Cityscapes and the Kaggle sets cannot be fetched here: the download stage stops at once
    with one line naming what to fetch and where it goes (the smoke override runs the rest)."""
    from cyclelab.data.download import download_dataset
    from cyclelab.errors import DataError

    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no_config"))
    cfg = config.from_dict(presets.load(name, REPO).params)
    with pytest.raises(DataError) as caught:
        download_dataset(cfg.data, tmp_path / "raw", seed=0, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "\n" not in message
    assert "data.source" in message or "needs the client" in message, message
    assert "kaggle.com/datasets/" in message or "cityscapes-dataset.com" in message, message
    assert not (tmp_path / "raw").exists()
