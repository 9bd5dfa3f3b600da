"""The lines `make study` ends with, read from the compare stage's metrics files."""

from __future__ import annotations

import json

import pytest

from cyclelab.errors import UserError
from cyclelab.report.headline import direction_line, headline


def _scores(fid: float, ci: list[float]) -> dict:
    return {"fid": fid, "fid_ci95": ci, "fid_identity": 100.0, "fid_floor": 20.0,
            "label_accuracy": 0.93, "label_accuracy_identity": 0.18,
            "label_accuracy_ceiling": 0.99}


def test_one_line_per_direction_with_doing_nothing(tmp_path):
    result = {"n_seeds": 3, "A_to_B": _scores(60.0, [55.0, 65.0]),
              "B_to_A": _scores(98.0, [90.0, 105.0])}
    (tmp_path / "baseline.json").write_text(json.dumps(result))
    lines = headline(tmp_path)
    assert len(lines) == 2
    assert lines[0].startswith("baseline A→B: label accuracy 0.930")
    assert "doing nothing 0.180" in lines[0] and "ceiling 0.990" in lines[0]
    assert "against doing nothing 100.0" in lines[0]
    # The upper CI end decides: 65 < 100 is better; 105 > 100 > 98 is not distinguishable.
    assert lines[0].endswith("better than doing nothing (3 seeds)")
    assert "not distinguishable from doing nothing" in lines[1]


def test_worse_than_doing_nothing_is_said():
    line = direction_line("v", "A_to_B", _scores(120.0, [110.0, 130.0]))
    assert "WORSE than doing nothing" in line


def test_no_metrics_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="no metrics files; run `dvc repro`"):
        headline(tmp_path)
