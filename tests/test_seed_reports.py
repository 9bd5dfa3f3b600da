"""Seed reports (``preset.seed_report`` of studies/*.yaml): the block's validation, every
preset's block against its own variants and scores, and the report that opens with it."""

from __future__ import annotations

import copy

import pytest
import yaml

from cyclelab import config, presets
from cyclelab.errors import UserError
from cyclelab.io import write_json
from cyclelab.metric_registry import METRICS
from cyclelab.report.build import build_report
from tests.conftest import REPO

SEED000 = yaml.safe_load((REPO / "studies" / "seed000.yaml").read_text())
ROW = ("tables", 0, "rows", 0)  # seeds/000's "No VAE Real and Fake Apples"


def _write(root, name: str, raw: dict) -> None:
    (root / "studies").mkdir(exist_ok=True)
    text = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)
    (root / "studies" / f"{name}.yaml").write_text(text)


def _edit(block: dict, path: tuple, value) -> dict:
    """``block`` with the key at ``path`` set to ``value`` (deleted when ``value`` is ...)."""
    block = copy.deepcopy(block)
    node = block
    for part in path[:-1]:
        node = node[part]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return block


BAD = [  # (where in seed_report, the value there (...: deleted), the key the error names)
    ((), "a sentence", "preset.seed_report: expected a mapping"),
    (("conditions",), ..., "preset.seed_report: missing conditions"),
    (("protocol",), ..., "preset.seed_report: missing protocol"),
    (("claim",), ["x"], "preset.seed_report.claim: unknown key; allowed: conditions, protocol"),
    (("conditions",), ["a", "list"], "preset.seed_report.conditions: expected one paragraph"),
    (("claims",), ["ok", ""], "preset.seed_report.claims: expected a list of one or more "
                              "non-empty strings"),
    (("protocol",), "one string", "preset.seed_report.protocol: expected a list"),
    (("tables", 0, "columns"), [], "preset.seed_report.tables[0].columns: expected a list"),
    (("tables", 0, "rows"), [], "preset.seed_report.tables[0].rows: expected a list of one"),
    ((*ROW, "values"), [288.733, 1.0], "tables[0].rows[0].values: got [288.733, 1.0], "
                                       "expected 1 numbers or strings, one per column (FID)"),
    ((*ROW, "values"), [True], "tables[0].rows[0].values: got [True]"),
    ((*ROW, "label"), ..., "tables[0].rows[0]: missing label"),
    ((*ROW, "ours", "variant"), "vae", "tables[0].rows[0].ours.variant: got 'vae', expected "
                                       "a variant or finetune of this preset: baseline, ae_init"),
    ((*ROW, "ours", "direction"), "AtoB", "tables[0].rows[0].ours.direction: got 'AtoB', "
                                          "expected one of A_to_B, B_to_A"),
    ((*ROW, "ours", "metric"), "fid_real", "tables[0].rows[0].ours.metric: got 'fid_real', "
                                           "expected a score of reports/metrics/<variant>.json"),
    ((*ROW, "ours", "metric"), ["fid", "is"], "tables[0].rows[0].ours.metric: got ['fid', "
                                              "'is'], expected one score or null per column"),
    ((*ROW, "ours", "seed"), 0, "tables[0].rows[0].ours.seed: unknown key"),
    (("tables", 0, "rows", 1, "ours", "metric"), ["fid_rec_fake"],
     "preset.seed_report.tables[0]: every ours.metric of a table is one score, or every one a "
     "list"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD,
                         ids=[f"{'.'.join(map(str, p)) or 'block'}-{i}"
                              for i, (p, _, _) in enumerate(BAD)])
def test_a_bad_block_is_one_line_naming_the_file_and_key(tmp_path, path, value, message):
    raw = copy.deepcopy(SEED000)
    if path:
        raw["preset"]["seed_report"] = _edit(raw["preset"]["seed_report"], path, value)
    else:
        raw["preset"]["seed_report"] = value
    _write(tmp_path, "seed000", raw)
    with pytest.raises(UserError) as error:
        presets.load("seed000", tmp_path)
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path / 'studies' / 'seed000.yaml'}: ")
    assert message in text


def test_a_block_is_optional_and_the_preset_block_takes_no_other_key(tmp_path):
    raw = copy.deepcopy(SEED000)
    del raw["preset"]["seed_report"]
    _write(tmp_path, "seed000", raw)
    assert presets.load("seed000", tmp_path).seed_report is None
    raw["preset"]["seed_reports"] = {}
    _write(tmp_path, "seed000", raw)
    with pytest.raises(UserError, match=r"seed000\.yaml: preset\.seed_reports: unknown key; "
                                        r"allowed: report, .*, seed_report$"):
        presets.load("seed000", tmp_path)


def test_a_preset_names_itself_in_study_preset(tmp_path):
    _write(tmp_path, "seed000-copy", SEED000)
    with pytest.raises(UserError, match=r"seed000-copy\.yaml: study\.preset is 'seed000', "
                                        r"expected 'seed000-copy'"):
        presets.load("seed000-copy", tmp_path)
    assert config.from_dict({}).study.preset == ""  # the default study has no seed report


def _produces(cfg: config.Config, key: str) -> bool:
    """Whether the evaluate stage of ``cfg`` writes score ``key``: a column of a metric that
    ``eval.metrics`` lists (the cycle FIDs only with ``eval.fid_cycle``)."""
    owner = {c.key: m.name for m in METRICS.values() for c in m.columns}
    cycle = ("fid_rec", "fid_real_fake", "fid_rec_fake")
    return owner.get(key) in cfg.eval.metrics and (key not in cycle or cfg.eval.fid_cycle)


@pytest.mark.parametrize("name", presets.names(REPO))
def test_every_seed_report_names_our_variants_and_scores_the_study_computes(name):
    preset = presets.load(name, REPO)
    cfg = config.from_dict(preset.params)
    assert cfg.study.preset == name
    report = preset.seed_report
    if not preset.meta["report"].startswith("seeds/"):  # ours (real32): no report to open with
        assert report is None
        return
    assert report is not None, f"{name}: preset.report names a seed report, give its block"
    assert report.report == preset.meta["report"] and report.conditions and report.protocol
    for table in report.tables:
        for row in table.rows:
            assert len(row.values) == len(table.columns), (table.title, row.label)
            if row.ours is None:
                continue
            assert row.ours.variant in cfg.runs, (table.title, row.label)
            keys = row.ours.metric if isinstance(row.ours.metric, tuple) else (row.ours.metric,)
            assert all(_produces(cfg, k) for k in keys if k), (table.title, row.label, keys)


# seeds/000 Fig. 10 and seeds/004 task 1, read off the reports (../shared/seeds/000_*.txt,
# 004_*.txt): a preset whose numbers drift from its report fails here.
VERBATIM = {
    "seed000": [("No VAE Real and Fake Apples", 288.733), ("No VAE Rec and Fake Apples", 248.116),
                ("VAE Real and Fake Apples", 275.323), ("VAE Rec and Fake Apples", 234.695),
                ("No VAE Real and Fake Oranges", 253.719),
                ("No VAE Rec and Fake Oranges", 257.986),
                ("VAE Real and Fake Oranges", 259.028), ("VAE Rec and Fake Oranges", 247.626)],
    "seed000-long": [("No VAE Real and Fake Apples", 272.411),
                     ("No VAE Rec and Fake Apples", 223.042),
                     ("VAE Real and Fake Apples", 262.127), ("VAE Rec and Fake Apples", 231.655),
                     ("No VAE Real and Fake Oranges", 280.329),
                     ("No VAE Rec and Fake Oranges", 255.039),
                     ("VAE Real and Fake Oranges", 289.917),
                     ("VAE Rec and Fake Oranges", 256.814)],
    "seed004": [("Raw to Cartoon", (46.70193, "2.41466 ± 0.24392", 4.39783, 3.85666)),
                ("Cartoon to Raw", (39.83461, "3.62382 ± 0.23992", 3.31548, ""))],
}


@pytest.mark.parametrize("name", sorted(VERBATIM))
def test_the_first_table_is_the_reports_numbers(name):
    table = presets.load(name, REPO).seed_report.tables[0]
    values = [(r.label, r.values if len(r.values) > 1 else r.values[0]) for r in table.rows]
    assert values == VERBATIM[name]


def _scores(value: float, seeds: int = 3) -> dict:
    return {value_key: v for value_key, v in (
        ("fid_real_fake", value), ("fid_real_fake_std", 3.0),
        ("fid_real_fake_seeds", [value] * seeds), ("fid_real_fake_ci95", [value - 2, value + 2]),
        ("fid", value + 50), ("fid_std", 1.5), ("fid_seeds", [value + 50] * seeds),
        ("fid_ci95", [value + 48, value + 52]))}


def _report(tmp_path, variants: dict[str, dict], **kwargs) -> tuple[str, str]:
    reports = tmp_path / "reports"
    for variant, metrics in variants.items():
        write_json(reports / "metrics" / f"{variant}.json", metrics)
    build_report(dict.fromkeys(variants, "a variant"), reports, reports / "figures",
                 {"dataset": "apple2orange"}, seeds=[0, 1, 2], **kwargs)
    return (reports / "summary.md").read_text(), (reports / "index.html").read_text()


def test_the_report_opens_with_the_seed_report_and_ours_on_its_rows(tmp_path):
    """seeds/000: its Fig. 10 verbatim, ours beside each row (mean ± std [CI] over seeds); a
    score we lack is "–" with the reason under the table; its claims quoted, then the protocol."""
    seed000 = presets.load("seed000", REPO).seed_report
    variants = {"baseline": {"seeds": [0, 1, 2], "n_seeds": 3, "A_to_B": _scores(120.0),
                             "B_to_A": _scores(110.0)},
                "ae_init": {"seeds": [0, 1, 2], "n_seeds": 3, "A_to_B": _scores(130.0),
                            "B_to_A": _scores(100.0)}}
    summary, page = _report(tmp_path, variants, seed_report=seed000)
    assert summary.startswith("# cyclelab study report\n\n## Seed report (seeds/000)\n\n"
                              "Its conditions: apple2orange: \"There were 995 pictures")
    section = summary[:summary.index("FID/KID compare translated images")]
    assert "### Fig. 10. The FID scores when the AE was run for 25 epochs" in section
    assert "| its row | FID | our row | ours |" in section
    assert ("| No VAE Real and Fake Apples | 288.733 | baseline A→B FID real–fake | "
            "120.0 ± 3.0 [118.0, 122.0] |") in section
    assert ("| VAE Real and Fake Oranges | 259.028 | ae_init B→A FID real–fake | "
            "100.0 ± 3.0 [98.0, 102.0] |") in section
    # Ours has no Rec–Fake FID here (eval.fid_cycle off): a dash and why.
    assert "| No VAE Rec and Fake Apples | 248.116 | baseline A→B FID rec–fake | – |" in section
    assert "- – fid_rec_fake of baseline: not in reports/metrics/baseline.json" in section
    assert ("- “Results for the AE-based CycleGAN show higher SSIM and FID scores against the "
            "normal CycleGAN, which are both structural measurements of GAN-related images.”"
            ) in section
    assert section.index("### Its claims") < section.index("Ours on these claims: the tests "
                                                           "between our variants under")
    assert section.index("Ours on these claims") < section.index("### What differs in protocol")
    assert "- Inception network: the report's FIDs come from a Keras InceptionV3" in section
    # index.html: the same section before anything else.
    body = page[page.index("<h1>cyclelab study report</h1>"):]
    assert body.index("<h2>Seed report (seeds/000)</h2>") < body.index(
        "<h2>What the data supports</h2>")
    assert ("<tr><td>No VAE Real and Fake Apples</td><td>288.733</td><td>baseline A→B FID "
            "real–fake</td><td>120.0 ± 3.0 [118.0, 122.0]</td></tr>") in page
    assert "<li>“The experiments show how there is a slight increase in scores when using the " \
           "AE.”</li>" in page
    assert "<li>– fid_rec_fake of baseline: not in reports/metrics/baseline.json</li>" in page


def test_a_table_with_several_columns_has_ours_per_column_with_the_reason_for_a_dash(tmp_path):
    """seeds/004 task 1: FID, IS and GMS per direction; without IS weights ours has FID only."""
    seed004 = presets.load("seed004", REPO).seed_report
    why = "eval.is_weights is empty: IS needs the full network"
    variants = {"attention_staged": {"seeds": [0, 1, 2], "n_seeds": 3,
                                     "A_to_B": _scores(10.0), "B_to_A": _scores(20.0)}}
    summary, page = _report(tmp_path, variants, seed_report=seed004,
                            absent={"is": why, "gms": why})
    assert "| its row | FID | IS | GMS | Avg GMS | our row | ours: FID | ours: IS | ours: GMS |" \
        in summary
    assert ("| Raw to Cartoon | 46.70193 | 2.41466 ± 0.24392 | 4.39783 | 3.85666 | "
            "attention_staged A→B | 60.0 ± 1.5 [58.0, 62.0] | – | – |") in summary
    assert ("| Cartoon to Raw | 39.83461 | 3.62382 ± 0.23992 | 3.31548 |  | "
            "attention_staged B→A | 70.0 ± 1.5 [68.0, 72.0] | – | – |") in summary
    assert f"- – is, gms: {why}\n" in summary  # one line per reason
    # Its table without a row of ours: its numbers only.
    assert "| its row | Avg GMS |\n|---|---|\n| 128x128 | 4.47829 |" in summary
    assert "<li>– is, gms: eval.is_weights is empty" in page
    # A variant the params do not have: a dash, and it says so.
    summary, _ = _report(tmp_path / "other", {"v": variants["attention_staged"]},
                         seed_report=seed004)
    assert "- – attention_staged: not a variant of this study's params.yaml" in summary


def test_without_a_seed_report_the_report_is_unchanged(tmp_path):
    variants = {"baseline": {"seeds": [0], "n_seeds": 1, "A_to_B": _scores(120.0, 1),
                             "B_to_A": _scores(110.0, 1)}}
    summary, page = _report(tmp_path, variants)
    assert summary.startswith("# cyclelab study report\n\nFID/KID compare translated images")
    assert "Seed report" not in summary + page
    assert "<h1>cyclelab study report</h1>\n<h2>What the data supports</h2>" in page
