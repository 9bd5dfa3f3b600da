"""Stage report: reports/index.html, reports/summary.md, reports/figures/ and
reports/comparisons.json from the aggregated metrics, loss curves, per-image scores and samples
of every variant and seed in params.yaml.

comparisons.json holds, for every pair of variants, direction and distribution score, the test
that decides whether they differ: Welch's t-test over seeds with three or more seeds each, else
a paired bootstrap over the test images (eval.bootstrap resamples), with its raw p-value, its
Holm–Bonferroni adjusted p-value over all of the report's tests (``p_holm``) and ``significant``
(adjusted p below eval.alpha)."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import config, paths
    from cyclelab.io import read_json, write_json
    from cyclelab.metrics import load_stats
    from cyclelab.metrics.inception_score import unavailable_reason
    from cyclelab.models import network_summary
    from cyclelab.report.aggregate import compare_variants, load_features, stage_name
    from cyclelab.report.build import build_report
    from cyclelab.tracking import stage_run

    variants = {name: v.description for name, v in cfg.variants.items()}
    variants |= {name: "; ".join(filter(None, (v.description, f"fine-tuned from {v.init}")))
                 for name, v in cfg.finetunes.items()}
    reference = read_json(paths.REFERENCE / "meta.json", "dvc repro reference")
    metrics = {v: read_json(paths.METRICS / f"{v}.json",
                            f"dvc repro {stage_name('compare', v, cfg.finetunes)}")
               for v in variants}
    # Every seed of a variant with FID or KID scores wrote the features they came from.
    features = load_features(
        {v: {s: paths.translated_dir(v, s) / "features.npz" for s in cfg.study.seeds}
         for v, m in metrics.items()
         if any(k in m.get(d, {}) for d in ("A_to_B", "B_to_A") for k in ("fid", "kid"))},
        cfg.finetunes)
    real = {"A_to_B": load_stats(paths.REFERENCE / "B.npz")["features"],
            "B_to_A": load_stats(paths.REFERENCE / "A.npz")["features"]}
    comparisons = compare_variants(metrics, features, real, cfg.eval.alpha, cfg.eval.bootstrap,
                                   cfg.seed)
    study = {
        "dataset": cfg.data.source or cfg.data.dataset,
        "image size": f"{cfg.data.image_size} px ({cfg.data.resize})",
        "CycleGAN": f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, "
                    f"{cfg.train.gan_loss}, lambda_cycle {cfg.train.lambda_cycle:g}, "
                    f"{cfg.model.generator} generator ({cfg.model.n_blocks} blocks, "
                    f"ngf {cfg.model.ngf})",
        "autoencoder pretraining": f"{cfg.ae.kind}, {cfg.ae.epochs} epochs, latent "
                                   f"{cfg.ae.latent_dim}, ae.init_from {cfg.ae.init_from}",
        "replicate seeds": ", ".join(map(str, cfg.study.seeds)),
        "test images (A, B)": ", ".join(str(d["n"]) for d in reference["domains"].values()),
        "uncertainty": f"{cfg.eval.bootstrap} bootstrap resamples; family-wise significance "
                       f"level {cfg.eval.alpha:g} over all comparisons (Holm–Bonferroni)",
        "FID network sha256": reference["weights_sha256"],
        "Inception Score / GMS": unavailable_reason(cfg.eval) or
        f"from {cfg.eval.is_weights} ({cfg.eval.is_splits} splits)",
    }
    trained = {f"{d.get('train_precision', 'unknown')} on {d.get('train_device', 'unknown')}"
               for m in metrics.values() for d in m.values() if isinstance(d, dict)}
    # CPU fp32 and GPU bf16 runs are not comparable: say how every variant was trained.
    study["training precision"] = ", ".join(sorted(trained)) + (
        " (NOT comparable across variants)" if len(trained) > 1 else "")
    for name in cfg.runs:  # parameter counts, receptive field (and its note)
        study[f"networks of {name}"] = network_summary(cfg.variant(name)[1],
                                                       cfg.data.image_size)
    with stage_run("report", config.flatten({"variants": cfg.variants,
                                             "finetunes": cfg.finetunes, "study": cfg.study}),
                   description="study report") as run:
        write_json(paths.REPORTS / "comparisons.json", comparisons)
        build_report(variants, paths.REPORTS, paths.REPORTS / "figures", study,
                     seeds=cfg.study.seeds, comparisons=comparisons, finetunes=cfg.finetunes)
        for variant, data in metrics.items():
            for direction in ("A_to_B", "B_to_A"):
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
