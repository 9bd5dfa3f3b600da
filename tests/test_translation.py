"""Scoring a translator: identity maps score perfectly, a colour-inverting map does not."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cyclelab.metrics import extract_features, load_inception, reference_stats
from cyclelab.metrics.fid import fid_from_stats
from cyclelab.metrics.translation import CurveScorer, score_direction, translate
from cyclelab.runtime import make_runtime
from cyclelab.training.staged import candidate_scorer


@pytest.fixture(scope="module")
def inception():
    return load_inception()


def test_identity_translator_scores_perfectly(inception, tiny_params):
    gen = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(
        torch.randint(0, 256, (5, 3, 4, 4), generator=gen).float(), size=32)
    real = smooth.round().to(torch.uint8)
    fake, rec = translate(lambda x: x, lambda x: x, real, batch_size=2,
                          runtime=make_runtime("cpu"))
    assert torch.equal(fake, real) and torch.equal(rec, real)
    cfg = dataclasses.replace(tiny_params.eval, kid_subset_size=5, kid_subsets=2, bootstrap=20,
                              fid_cycle=True)
    reference = reference_stats(extract_features(inception, real), inception.sha256)
    scores, per_image, features = score_direction(real, fake, rec, reference, inception, cfg,
                                                  source_reference=reference)
    assert scores["fid_rec"] == pytest.approx(0.0, abs=1e-3)  # seeds/000's second FID pair
    assert scores["fid"] == pytest.approx(0.0, abs=1e-3)
    assert scores["ssim"] == pytest.approx(1.0) and scores["ssim_cycle"] == pytest.approx(1.0)
    assert scores["psnr"] == 100.0 and scores["n_images"] == 5
    assert len(per_image["ssim"]) == 5
    assert features.shape == (5, 2048)
    lo, hi = scores["fid_ci95"]
    assert lo <= scores["fid"] <= hi and "kid_ci95" in scores and "kid_subset_std" in scores

    inverted, _ = translate(lambda x: -x, lambda x: x, real, 5, make_runtime("cpu"))
    bad, _, _ = score_direction(real, inverted, real, reference, inception, cfg)
    assert bad["fid"] > 10 and bad["ssim"] < 0.5 and bad["ssim_cycle"] == pytest.approx(1.0)


def test_reference_line_keys_follow_the_metric_name_whatever_its_length():
    from cyclelab.metrics.translation import as_line

    scores = {"fid": 1.0, "fid_ci95": [0.5, 1.5], "kid_subset_mean": 0.1, "is": 2.0,
              "is_std": 0.1, "ssim": 0.5}
    assert as_line(scores, "identity") == {
        "fid_identity": 1.0, "fid_identity_ci95": [0.5, 1.5],
        "kid_identity_subset_mean": 0.1, "is_identity": 2.0, "is_identity_std": 0.1,
        "ssim_identity": 0.5}
    assert as_line({"label_accuracy": 0.9}, "floor", names=("label_accuracy",)) == \
        {"label_accuracy_floor": 0.9}
    with pytest.raises(KeyError, match="n_images: not a score"):
        as_line({"n_images": 3}, "floor")


def test_seed000_pairs_real_fake_and_rec_fake(inception, tiny_params):
    # seeds/000 Figs 10-11: FID of the real set against its translations and of the
    # reconstructions against the translations; SSIM of reconstruction against translation.
    from cyclelab.evaluation import report_pairs

    gen = torch.Generator().manual_seed(1)
    real = torch.nn.functional.interpolate(
        torch.randint(0, 256, (6, 3, 4, 4), generator=gen).float(), size=32).round().to(torch.uint8)
    inverted = 255 - real
    cfg = dataclasses.replace(tiny_params.eval, metrics=["fid", "ssim"], fid_cycle=True)
    feats = extract_features(inception, inverted)
    scores, per_image = report_pairs(real, inverted, real, feats, inception, cfg)
    assert set(scores) == {"fid_real_fake", "fid_rec_fake", "ssim_rec_fake"}
    assert scores["fid_real_fake"] > 10  # the translation moved away from its input
    assert scores["fid_rec_fake"] == pytest.approx(scores["fid_real_fake"])  # rec == real here
    assert scores["ssim_rec_fake"] < 0.5 and len(per_image["ssim_rec_fake"]) == 6
    # Doing nothing: no distance from the input (why these pairs are not a quality score).
    same, _ = report_pairs(real, real, real, extract_features(inception, real), inception, cfg)
    assert same["fid_real_fake"] == pytest.approx(0.0, abs=1e-3)
    assert same["ssim_rec_fake"] == pytest.approx(1.0)
    off = dataclasses.replace(cfg, fid_cycle=False)
    assert report_pairs(real, inverted, real, feats, inception, off) == ({}, {})


def test_candidate_score_of_identity_maps_is_the_fid_between_subsets(inception, tiny_params):
    # Identity generators turn A into "fake B" and B into "fake A": both directions' FID is the
    # FID between the two real subsets, computed here on its own; the modes stay as they were.
    gen = torch.Generator().manual_seed(0)
    val_a, val_b = (torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=gen)
                    for n in (4, 3))
    G_ab, G_ba = torch.nn.Identity().train(), torch.nn.Identity().eval()
    scorer = CurveScorer(inception, val_a, val_b, tiny_params.eval, metrics=["fid"])
    score = candidate_scorer(scorer, make_runtime("cpu", "fp32"), "fid")
    stats_a, stats_b = (reference_stats(extract_features(inception, v)) for v in (val_a, val_b))
    expected = (fid_from_stats(stats_b, stats_a) + fid_from_stats(stats_a, stats_b)) / 2
    assert score({"G_ab": G_ab, "G_ba": G_ba}) == pytest.approx(expected, rel=1e-6)
    assert G_ab.training and not G_ba.training
