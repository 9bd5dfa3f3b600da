"""Stage report: reports/index.html, reports/summary.md, reports/figures/ and
reports/comparisons.json from the aggregated metrics, loss curves, per-image scores and samples
of every variant and seed in params.yaml. When study.preset names a preset whose ``preset:``
block holds a seed report (studies/<preset>.yaml), both pages open with it: its numbers verbatim
with ours on the same rows, its claims, and what differs in protocol.

comparisons.json holds, for every pair of variants, direction and distribution score, the test
that decides whether they differ: Welch's t-test over seeds with three or more seeds each, else
a paired bootstrap over the test images (eval.bootstrap resamples), with its raw p-value, its
Holm–Bonferroni adjusted p-value over all of the report's tests (``p_holm``) and ``significant``
(adjusted p below eval.alpha)."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import config, paths, presets
    from cyclelab.directions import DIRECTIONS, KEYS
    from cyclelab.io import read_json, write_json
    from cyclelab.metric_registry import compared
    from cyclelab.metrics import load_stats
    from cyclelab.metrics.inception_score import unavailable_reason
    from cyclelab.report.aggregate import compare_variants, load_features, stage_name
    from cyclelab.report.build import build_report
    from cyclelab.report.study import study_facts
    from cyclelab.tracking import stage_run

    variants = {name: v.description for name, v in cfg.variants.items()}
    variants |= {name: "; ".join(filter(None, (v.description, f"fine-tuned from {v.init}")))
                 for name, v in cfg.finetunes.items()}
    reference = read_json(paths.REFERENCE / "meta.json", "dvc repro reference")
    metrics = {v: read_json(paths.METRICS / f"{v}.json",
                            f"dvc repro {stage_name('compare', v, cfg.finetunes)}")
               for v in variants}
    # Every seed of a variant with scores the report compares wrote the features they came from.
    features = load_features(
        {v: {s: paths.translated_dir(v, s) / "features.npz" for s in cfg.study.seeds}
         for v, m in metrics.items()
         if any(k in m.get(d, {}) for d in KEYS for k in compared())},
        cfg.finetunes)
    real = {d.key: load_stats(paths.REFERENCE / f"{d.target}.npz")["features"]
            for d in DIRECTIONS}
    comparisons = compare_variants(metrics, features, real, cfg.eval.alpha, cfg.eval.bootstrap,
                                   cfg.seed)
    study = study_facts(cfg, reference, metrics,
                        read_json(paths.PREPARE_SUMMARY, "dvc repro prepare"))
    seed_report = presets.load(cfg.study.preset).seed_report if cfg.study.preset else None
    no_is = unavailable_reason(cfg.eval)
    absent = dict.fromkeys(("is", "gms"), no_is) if no_is else {}
    with stage_run("report", config.flatten({"variants": cfg.variants,
                                             "finetunes": cfg.finetunes, "study": cfg.study}),
                   description="study report") as run:
        write_json(paths.REPORTS / "comparisons.json", comparisons)
        build_report(variants, paths.REPORTS, paths.REPORTS / "figures", study,
                     seeds=cfg.study.seeds, comparisons=comparisons, finetunes=cfg.finetunes,
                     seed_report=seed_report, absent=absent)
        for variant, data in metrics.items():
            for direction in KEYS:
                run.log_metrics({f"{variant}.{direction}.{k}": v
                                 for k, v in data.get(direction, {}).items()
                                 if isinstance(v, int | float) and not isinstance(v, bool)})
        for name in ("index.html", "summary.md", "comparisons.json", "figures"):
            run.log_artifact(paths.REPORTS / name, "report" if name != "figures" else None)
    for comparison in comparisons:
        print(f"report: {comparison['sentence']}")
    print(f"report: {paths.REPORTS / 'index.html'} ({len(metrics)} variants)")


if __name__ == "__main__":
    raise SystemExit(run_stage("report", main, __doc__))
