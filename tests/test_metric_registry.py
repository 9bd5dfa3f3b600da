"""The metric registry (cyclelab.metric_registry) is the one source of the metrics' names, the
report's columns, the comparisons between variants and the reference lines' keys: a metric
registered there, and nowhere else, shows up in all of them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cyclelab import config, metric_registry
from cyclelab.config import EvalConfig
from cyclelab.metric_registry import DISTRIBUTION, METRICS, Column, Metric
from cyclelab.metrics import compute_distribution, reference_stats
from cyclelab.metrics.translation import as_line
from cyclelab.report.aggregate import aggregate, compare_variants, family_sentence
from cyclelab.report.build import figure_titles
from cyclelab.report.tables import metrics_table

FAKE = Metric("fake", DISTRIBUTION, "a test metric (lower is better)",
              "tests.test_metric_registry:fake_score", compared=True,
              columns=(Column("fake", "FAKE ↓", "{:.2f}", 15, interval=True),
                       Column("fake_extra", "fake extra", "{:.1f}", 200)))


def fake_score(real: dict, fake: dict, cfg: EvalConfig, seed: int) -> dict[str, float]:
    """The distance between the two means: what FAKE computes."""
    return {"fake": float(np.abs(real["mu"] - fake["mu"]).sum())}


@pytest.fixture
def fake_metric(monkeypatch: pytest.MonkeyPatch) -> Metric:
    monkeypatch.setitem(METRICS, FAKE.name, FAKE)
    return FAKE


def test_the_schema_allows_exactly_the_registered_names():
    assert config.METRIC_NAMES == metric_registry.METRIC_NAMES == (
        "fid", "kid", "is", "gms", "ssim", "psnr")


def test_the_registry_imports_neither_numpy_nor_torch():
    """The schema reads the names at every stage's start-up (its time budget)."""
    code = ("import sys, cyclelab.metric_registry; "
            "print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_the_report_columns_are_the_registered_ones_in_their_order():
    header, _ = metrics_table({"v": {"n_seeds": 1, "A_to_B": {
        key: 1.0 for key in ("fid", "kid", "is", "gms", "fid_rec", "ssim", "ssim_cycle",
                             "psnr_cycle", "label_accuracy", "fid_real_fake", "fid_rec_fake",
                             "ssim_rec_fake", "psnr")}}})
    assert header == ["variant", "seeds"] + [f"A→B {label}" for label in (
        "FID ↓", "KID ↓", "IS ↑", "GMS ↓", "FID rec ↓", "SSIM ↑", "cycle SSIM ↑",
        "cycle PSNR ↑", "label acc. ↑", "FID real–fake", "FID rec–fake", "SSIM rec–fake")]
    assert metric_registry.compared() == ("fid", "kid")


def test_a_registered_metric_is_computed_and_named_in_the_reference_lines(fake_metric):
    rng = np.random.default_rng(0)
    real = reference_stats(rng.normal(size=(8, 3)))
    fake = reference_stats(rng.normal(size=(8, 3)) + 2.0)
    scores = compute_distribution(["fake", "fid"], real, fake, EvalConfig())
    assert scores["fake"] == pytest.approx(np.abs(real["mu"] - fake["mu"]).sum())
    assert as_line({"fake": 1.0, "fake_ci95": [0.5, 1.5]}, "floor") == {
        "fake_floor": 1.0, "fake_floor_ci95": [0.5, 1.5]}


def test_a_registered_metric_gets_its_report_columns(fake_metric):
    scores = {"fid": 10.0, "fake": 3.0, "fake_ci95": [2.0, 4.0], "fake_extra": 7.0,
              "fake_identity": 9.0}
    header, rows = metrics_table({"v": {"n_seeds": 1, "A_to_B": scores}})
    assert header == ["variant", "seeds", "A→B FID ↓", "A→B FAKE ↓", "A→B fake extra"]
    assert rows[0] == ["v", "1", "10.0", "3.00 [2.00, 4.00]", "7.0"]
    assert rows[1][3] == "9.00"  # its identity line
    assert "fake" in dict(figure_titles())


def test_a_registered_metric_is_aggregated_and_compared_between_variants(fake_metric):
    def variant(offset: float) -> dict:
        return aggregate({s: {"A_to_B": {"fake": offset + 0.1 * s}} for s in range(3)})

    metrics = {"one": variant(0.0), "two": variant(5.0)}
    assert metrics["one"]["A_to_B"]["fake_seeds"] == pytest.approx([0.0, 0.1, 0.2])
    results = compare_variants(metrics, {}, {}, alpha=0.05, resamples=0, seed=0)
    assert [(r["metric"], r["direction"]) for r in results] == [("fake", "A_to_B")]
    assert results[0]["significant"] and results[0]["diff"] == pytest.approx(-5.0)
    assert "× FID/KID/FAKE)" in family_sentence(results)
