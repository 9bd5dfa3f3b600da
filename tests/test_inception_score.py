"""Inception Score and GMS: the formula on known logits, the weights file, the registry."""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from cyclelab import config
from cyclelab.config import EvalConfig
from cyclelab.errors import ConfigError, DataError
from cyclelab.metrics import (
    LOGITS_KEY,
    class_logits,
    compute_distribution,
    fid_from_stats,
    geometric_mean_score,
    inception_score,
    load_is_network,
    reference_stats,
    unavailable_reason,
)
from cyclelab.metrics.inception import preprocess
from cyclelab.metrics.inception_score import NUM_CLASSES

# ---------------------------------------------------------------- the formula


def test_uniform_predictions_score_one():
    mean, std = inception_score(np.zeros((20, NUM_CLASSES)), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_confident_distinct_classes_score_their_number():
    # 20 images, each certain of its own class: p(y) is uniform over the 10 classes of a part.
    logits = np.full((20, NUM_CLASSES), -1e4)
    logits[np.arange(20), np.arange(20)] = 0.0
    mean, std = inception_score(logits, splits=2)
    assert mean == pytest.approx(10.0, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)
    assert inception_score(logits, splits=1)[0] == pytest.approx(20.0, rel=1e-12)


def test_one_confident_class_for_all_scores_one():
    logits = np.zeros((10, 5))
    logits[:, 3] = 50.0
    assert inception_score(logits, splits=1)[0] == pytest.approx(1.0, abs=1e-9)


def test_matches_the_original_formula_per_split():
    logits = np.random.default_rng(0).normal(scale=3.0, size=(30, 7))
    scores = []
    for part in np.split(logits, 3):
        p_yx = scipy.special.softmax(part, axis=1)
        p_y = p_yx.mean(axis=0)
        scores.append(np.exp(np.mean([scipy.stats.entropy(p, p_y) for p in p_yx])))
    mean, std = inception_score(logits, splits=3)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)
    assert 1.0 < mean < 7.0


def test_uneven_splits_follow_the_original_boundaries():
    logits = np.random.default_rng(1).normal(size=(7, 4))
    by_hand = [inception_score(logits[a:b], splits=1)[0] for a, b in ((0, 2), (2, 4), (4, 7))]
    assert inception_score(logits, splits=3)[0] == pytest.approx(np.mean(by_hand), rel=1e-12)


def test_too_few_images_for_the_splits_is_a_data_error():
    with pytest.raises(DataError, match="at least eval.is_splits = 10 images, got 4"):
        inception_score(np.zeros((4, NUM_CLASSES)), splits=10)


def test_gms_is_the_square_root_of_fid_over_is():
    # seeds/004: FID 46.70193, IS 2.41466 -> GMS 4.39783.
    assert geometric_mean_score(46.70193, 2.41466) == pytest.approx(4.39783, abs=1e-5)
    with pytest.raises(ValueError):
        geometric_mean_score(1.0, 0.0)


# ---------------------------------------------------------------- the network file


class _TinyClassifier(torch.nn.Module):
    """The IS network's shapes: N×3×299×299 FID input -> N×1008 logits."""

    def __init__(self, classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 5, stride=4)
        self.fc = torch.nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).relu().mean(dim=(2, 3)))


def _save_scripted(path, module: torch.nn.Module):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation notice
        torch.jit.script(module).save(str(path))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def is_weights(tmp_path):
    return _save_scripted(tmp_path / "tiny_is.pt", _TinyClassifier())


def test_pinned_file_gives_logits_through_the_fid_preprocessing(is_weights):
    path, sha = is_weights
    net = load_is_network(path, sha)
    assert net.sha256 == sha
    images = np.random.default_rng(2).integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    logits = class_logits(net, images, batch_size=2)
    assert logits.shape == (3, NUM_CLASSES) and logits.dtype == np.float64
    with torch.no_grad():
        expected = net.module(preprocess(torch.from_numpy(images).permute(0, 3, 1, 2)))
    np.testing.assert_allclose(logits, expected.double().numpy(), atol=1e-5)


def test_unpinned_file_records_its_hash(is_weights):
    path, sha = is_weights
    assert load_is_network(path).sha256 == sha


def test_wrong_pin_missing_file_and_non_torchscript_are_one_line_config_errors(is_weights,
                                                                               tmp_path):
    path, _ = is_weights
    with pytest.raises(ConfigError, match="sha256 .*, expected 0{64}; fix eval.is_weights") as err:
        load_is_network(path, "0" * 64)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="file not found"):
        load_is_network(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a network")
    with pytest.raises(ConfigError, match="not a TorchScript file") as err:
        load_is_network(junk)
    assert "\n" not in str(err.value)


def test_a_network_without_1008_outputs_is_refused(tmp_path):
    path, sha = _save_scripted(tmp_path / "pool.pt", _TinyClassifier(classes=2048))
    net = load_is_network(path, sha)
    with pytest.raises(ConfigError, match="gives 2048 outputs per image, IS needs the 1008"):
        class_logits(net, np.zeros((2, 8, 8, 3), dtype=np.uint8))


# ---------------------------------------------------------------- registry and config


def test_registry_reports_is_and_gms_from_the_logits():
    rng = np.random.default_rng(3)
    real = reference_stats(rng.normal(size=(12, 4)), "d" * 64)
    fake = reference_stats(rng.normal(size=(20, 4)) + 1.0, "d" * 64)
    fake[LOGITS_KEY] = rng.normal(scale=4.0, size=(20, NUM_CLASSES))
    cfg = EvalConfig(is_weights="is.pt", is_splits=5)
    results = compute_distribution(["fid", "is", "gms"], real, fake, cfg)
    assert sorted(results) == ["fid", "gms", "is", "is_std"]
    assert (results["is"], results["is_std"]) == inception_score(fake[LOGITS_KEY], splits=5)
    assert results["gms"] == pytest.approx(math.sqrt(fid_from_stats(real, fake) / results["is"]))


def test_without_logits_is_and_gms_are_absent_and_the_reason_is_given():
    stats = reference_stats(np.random.default_rng(4).normal(size=(5, 3)))
    cfg = EvalConfig()
    assert compute_distribution(["is", "gms"], stats, stats, cfg) == {}
    assert "eval.is_weights is empty" in unavailable_reason(cfg)
    assert unavailable_reason(EvalConfig(metrics=["fid"])) == "not listed in eval.metrics"
    assert unavailable_reason(EvalConfig(is_weights="is.pt")) is None


def test_config_keys(tiny_raw):
    tiny_raw["eval"].update(is_weights="w.pt", is_weights_sha256="ab" * 32, is_splits=4,
                            metrics=["fid", "is", "gms"])
    cfg = config.from_dict(tiny_raw)
    assert (cfg.eval.is_weights, cfg.eval.is_splits) == ("w.pt", 4)
    tiny_raw["eval"]["is_splits"] = 0
    with pytest.raises(ConfigError, match="eval.is_splits: got 0, must be >= 1"):
        config.from_dict(tiny_raw)


def test_staged_candidates_are_scored_by_gms_with_the_is_network(is_weights, tiny_raw):
    """train.stage_select gms (seeds/004): a candidate's score is the mean over directions of
    sqrt(FID / IS) of its validation translations, IS from eval.is_weights' class logits."""
    from cyclelab.metrics import load_inception
    from cyclelab.metrics.inception_score import (
        class_logits,
        geometric_mean_score,
        inception_score,
        load_is_network,
    )
    from cyclelab.metrics.translation import CurveScorer
    from cyclelab.runtime import make_runtime
    from cyclelab.training.staged import candidate_scorer

    path, sha = is_weights
    cfg = EvalConfig(batch_size=4, kid_subset_size=4, kid_subsets=2, is_splits=2)
    rng = torch.Generator().manual_seed(0)
    val = {d: torch.randint(0, 256, (6, 3, 32, 32), generator=rng, dtype=torch.uint8)
           for d in "AB"}
    runtime, is_net = make_runtime("cpu", "fp32"), load_is_network(path, sha, "cpu")
    inception = load_inception("", "", "cpu")
    nets = {"G_ab": torch.nn.Identity(), "G_ba": torch.nn.Identity()}
    fid = CurveScorer(inception, val["A"], val["B"], cfg, 0, ["fid"])(*nets.values(), runtime)
    scorer = CurveScorer(inception, val["A"], val["B"], cfg, 0, ["gms"], is_net)
    expected = [geometric_mean_score(fid[f"fid_{d}"], inception_score(
        class_logits(is_net, val[s], 4, progress=False), 2)[0])
        for d, s in (("A_to_B", "A"), ("B_to_A", "B"))]
    assert candidate_scorer(scorer, runtime, "gms")(nets) == pytest.approx(sum(expected) / 2)
    # Without the IS network there is no GMS to select by: refused before any training.
    tiny_raw["train"].update(stage_batch_sizes=[2], stage_epochs=[1], stage_eval_every=[1],
                             stage_select="gms")
    with pytest.raises(config.ConfigError, match="stage_select gms needs eval.is_weights"):
        config.from_dict(tiny_raw)
