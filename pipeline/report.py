"""Stage report: reports/index.html, reports/summary.md and reports/figures/ from the metrics,
loss curves, per-image scores and samples of every variant in params.yaml."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import config, paths
    from cyclelab.report.build import build_report
    from cyclelab.tracking import stage_run

    variants = {name: v.description for name, v in cfg.variants.items()}
    with stage_run("report", config.flatten({"variants": cfg.variants}),
                   description="study report") as run:
        metrics = build_report(variants, paths.REPORTS, paths.REPORTS / "figures")
        for variant, data in metrics.items():
            for direction in ("A_to_B", "B_to_A"):
                run.log_metrics({f"{variant}.{direction}.{k}": v
                                 for k, v in data.get(direction, {}).items()})
        for name in ("index.html", "summary.md", "figures"):
            run.log_artifact(paths.REPORTS / name, "report" if name != "figures" else None)
    print(f"report: {paths.REPORTS / 'index.html'} ({len(metrics)} variants)")


if __name__ == "__main__":
    raise SystemExit(run_stage("report", main, __doc__))
