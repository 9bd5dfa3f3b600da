"""Stage report: reports/index.html, reports/summary.md and reports/figures/ from the metrics,
loss curves, per-image scores and samples of every variant in params.yaml."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    import json

    from cyclelab import config, paths
    from cyclelab.report.build import build_report
    from cyclelab.tracking import stage_run

    variants = {name: v.description for name, v in cfg.variants.items()}
    reference = json.loads((paths.REFERENCE / "meta.json").read_text())
    study = {
        "dataset": cfg.data.source or cfg.data.dataset,
        "image size": f"{cfg.data.image_size} px ({cfg.data.resize})",
        "CycleGAN": f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, "
                    f"{cfg.train.gan_loss}, lambda_cycle {cfg.train.lambda_cycle:g}, "
                    f"{cfg.model.generator} generator ({cfg.model.n_blocks} blocks, "
                    f"ngf {cfg.model.ngf})",
        "autoencoder pretraining": f"{cfg.ae.epochs} epochs, latent {cfg.ae.latent_dim}",
        "test images (A, B)": ", ".join(str(d["n"]) for d in reference["domains"].values()),
        "FID network sha256": reference["weights_sha256"],
    }
    with stage_run("report", config.flatten({"variants": cfg.variants}),
                   description="study report") as run:
        metrics = build_report(variants, paths.REPORTS, paths.REPORTS / "figures", study)
        for variant, data in metrics.items():
            for direction in ("A_to_B", "B_to_A"):
                run.log_metrics({f"{variant}.{direction}.{k}": v
                                 for k, v in data.get(direction, {}).items()})
        for name in ("index.html", "summary.md", "figures"):
            run.log_artifact(paths.REPORTS / name, "report" if name != "figures" else None)
    print(f"report: {paths.REPORTS / 'index.html'} ({len(metrics)} variants)")


if __name__ == "__main__":
    raise SystemExit(run_stage("report", main, __doc__))
