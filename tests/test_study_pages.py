"""docs/studies/<name>.md: the tables a page shows are the ones its committed metrics.json gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cyclelab import presets
from cyclelab.report import study_page
from tests.conftest import REPO

PAGES = sorted(p for p in (REPO / "docs" / "studies").glob("*.md")
               if (p.with_suffix("") / "metrics.json").is_file())


def _scores(fid: float, seeds: list[float], worse: bool = False) -> dict:
    return {"fid": fid, "fid_std": 1.5, "fid_seeds": seeds, "fid_ci95": [fid - 2, fid + 2],
            "fid_identity": 167.0, "fid_floor": 80.0, "ssim": 0.5, "ssim_seeds": seeds,
            "ssim_std": 0.01, "fid_real_fake": 120.0, "fid_real_fake_seeds": seeds,
            "fid_real_fake_std": 3.0, "worse_than_identity": worse}


def test_tables_show_each_number_beside_its_lines_and_the_reports_values():
    metrics = {"baseline": {"n_seeds": 3, "A_to_B": _scores(200.0, [1, 2, 3], worse=True),
                            "B_to_A": _scores(150.0, [1, 2, 3])},
               "ae_init": {"n_seeds": 3, "A_to_B": _scores(190.0, [1, 2, 3], worse=True),
                           "B_to_A": _scores(140.0, [1, 2, 3])}}
    seed000 = presets.load("seed000", REPO).seed_report  # its Fig. 10 table
    text = study_page.tables(metrics, seed_report=seed000)
    assert text.startswith(study_page.BEGIN) and text.endswith(study_page.END)
    assert "| A→B | baseline | 3 | ⚠ 200.0 ± 1.5 [198.0, 202.0] |" in text
    assert "| B→A | ae_init | 3 | 140.0 ± 1.5 [138.0, 142.0] |" in text
    assert "| A→B | doing nothing | – | 167.0 |" in text
    assert "| B→A | floor (real vs real) | – | 80.0 |" in text
    # seeds/000's own rows beside ours (its Real–Fake apples: 288.7 No VAE, 275.3 VAE).
    assert "| Real and Fake Apples | 288.7 | 120.0 ± 3.0 | 275.3 | 120.0 ± 3.0 |" in text
    assert "Rec and Fake Oranges | 258.0 | – | 247.6 | – |" in text
    # A partial study (one of the report's variants so far) shows – for the other.
    partial = study_page.tables({"baseline": metrics["baseline"]}, seed_report=seed000)
    assert "| Real and Fake Apples | 288.7 | 120.0 ± 3.0 | 275.3 | – |" in partial
    # A study without the report's variants has no report table.
    assert "Real and Fake" not in study_page.tables({"real32": metrics["baseline"]},
                                                    seed_report=seed000)
    assert "Real and Fake" not in study_page.tables(metrics)  # a study without a seed report
    sentence = "FID A→B: no significant difference between baseline and ae_init (…)."
    assert text.count("\n- ") == 0
    assert f"\n- {sentence}\n" in study_page.tables(metrics, [{"sentence": sentence}], seed000)
    page = f"# study\n\ntext\n{text}\nmore\n"
    assert study_page.embedded(page) == text and study_page.embedded("# none") == ""


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_committed_page_numbers_are_the_committed_json(page: Path):
    folder = page.with_suffix("")  # its seed report: the preset of the same name
    assert study_page.embedded(page.read_text()) == study_page.page_tables(folder, REPO), (
        f"{page}: its tables differ from {folder}/metrics.json and comparisons.json; regenerate "
        f"them with python -m cyclelab.report.study_page {folder}")


def test_collect_study_merges_replicates_run_apart_with_the_stages_own_rules(tmp_path):
    """bench/collect_study.py --add: seeds run in separate clones are aggregated as the compare
    stage does (mean, sample std, t-interval over seeds) and tested as the report does (Welch
    over seeds from three on, Holm over the family)."""
    import statistics
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import collect_study
    finally:
        sys.path.remove(str(REPO / "bench"))
    from cyclelab.metrics.uncertainty import seed_interval

    committed = REPO / "docs" / "studies" / "seed000" / "seeds" / "baseline" / "s0.json"
    replicate = json.loads(committed.read_text())
    fids = {"baseline": [240.0, 250.0, 245.0], "ae_init": [300.0, 310.0, 305.0]}
    back = {"baseline": [200.0, 210.0, 205.0], "ae_init": [201.0, 209.0, 206.0]}
    for variant, values in fids.items():
        for seed, fid in enumerate(values):
            scores = json.loads(json.dumps(replicate))
            scores["A_to_B"]["fid"], scores["B_to_A"]["fid"] = fid, back[variant][seed]
            for direction in ("A_to_B", "B_to_A"):  # KID varies over seeds too
                scores[direction]["kid"] += 0.01 * seed
            path = tmp_path / "seeds" / variant / f"s{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(scores))
    collect_study.merge(tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    a_to_b = metrics["ae_init"]["A_to_B"]
    assert metrics["ae_init"]["seeds"] == [0, 1, 2] and a_to_b["fid_seeds"] == fids["ae_init"]
    assert a_to_b["fid"] == pytest.approx(305.0)
    assert a_to_b["fid_std"] == pytest.approx(statistics.stdev(fids["ae_init"]))
    assert a_to_b["fid_ci95"] == pytest.approx(seed_interval(fids["ae_init"]))
    comparisons = json.loads((tmp_path / "comparisons.json").read_text())
    fid = [c for c in comparisons if c["metric"] == "fid" and c["direction"] == "A_to_B"]
    assert fid[0]["method"].startswith("Welch t-test over seeds (3 vs 3)")
    assert fid[0]["significant"] and fid[0]["p_holm"] >= fid[0]["p"] and fid[0]["family_size"] == 4
    same = [c for c in comparisons if c["metric"] == "fid" and c["direction"] == "B_to_A"]
    assert same[0]["p"] > 0.5 and not same[0]["significant"]  # overlapping seeds: no claim


def _search_rows(jsonl: Path) -> list[str]:
    """The per-configuration rows docs/studies/beyond-seed000.md shows, computed from the
    committed JSON lines of bench/tune_default.py (validation scores of each seed)."""
    import statistics

    runs: dict[str, list[dict]] = {}
    for line in jsonl.read_text().splitlines():
        row = json.loads(line)
        runs.setdefault(row["name"], []).append(row)
    shown = []
    for rows in runs.values():
        if len(rows) < 3:  # one-seed screens are reported as such, not as rows over seeds
            continue
        rows = sorted(rows, key=lambda r: r["seed"])
        for key, arrow in (("A_to_B", "A→B"), ("B_to_A", "B→A")):
            fid = [r[key]["fid"] for r in rows]
            kid = [r[key]["kid"] for r in rows]
            first = rows[0][key]
            shown.append(
                f"| {arrow} ({'apple→orange' if key == 'A_to_B' else 'orange→apple'}) | "
                f"{', '.join(f'{v:.1f}' for v in fid)} | {statistics.fmean(fid):.1f} ± "
                f"{statistics.stdev(fid):.1f} | {statistics.fmean(kid):.3f} ± "
                f"{statistics.stdev(kid):.3f} | {first['fid_identity']:.1f} / "
                f"{first['kid_identity']:.3f} |")
    return shown


def _screen_cells(jsonl: Path) -> dict[str, list[str]]:
    """The one-seed screens' cells the page shows, each run's 'FID / KID' both ways."""
    runs: dict[str, list[dict]] = {}
    for line in jsonl.read_text().splitlines():
        row = json.loads(line)
        runs.setdefault(row["name"], []).append(row)
    return {name: [f"{rows[0][d]['fid']:.1f} / {rows[0][d]['kid']:.3f}"
                   for d in ("A_to_B", "B_to_A")]
            for name, rows in runs.items() if len(rows) == 1}


def test_beyond_seed000_numbers_are_the_committed_json_lines():
    page = (REPO / "docs" / "studies" / "beyond-seed000.md").read_text(encoding="utf-8")
    jsonl = REPO / "bench" / "results" / "real32_2026-12-06.jsonl"
    rows = _search_rows(jsonl)
    assert rows and [row for row in rows if row not in page] == []
    lines = page.splitlines()
    screens = _screen_cells(jsonl)
    assert screens
    for name, cells in screens.items():  # its row in the screens' table: | NAME | ... |
        rows = [ln for ln in lines if ln.startswith(f"| {name} |")]
        assert any(all(cell in row for cell in cells) for row in rows), (name, cells, rows)
