"""The report's study table: what was run, on what data, under which uncertainty rules."""

from __future__ import annotations

from cyclelab.config import Config


def study_facts(cfg: Config, reference: dict, metrics: dict[str, dict],
                prepared: dict) -> dict[str, str]:
    """One line per fact, in the order the report lists them. ``reference`` is the reference
    stage's meta.json, ``metrics`` compare's files per variant, ``prepared`` prepare's
    summary.json (split sizes and the training copies of test or validation images dropped)."""
    from cyclelab.metrics.inception_score import unavailable_reason
    from cyclelab.models.build import network_summary

    outputs, duplicates = prepared.get("outputs", {}), prepared.get("duplicates", {})
    study = {
        "dataset": cfg.data.source or cfg.data.dataset,
        "image size": f"{cfg.data.image_size} px ({cfg.data.resize})",
        "images (train / validation / test), A; B": "; ".join(
            " / ".join(str(outputs.get(f"{split}{d}", 0)) for split in ("train", "val", "test"))
            for d in "AB"),
        "training copies of validation or test images dropped":
            f"{duplicates.get('dropped_from_train', 0)} (data.drop_duplicates: "
            f"{str(cfg.data.drop_duplicates).lower()})",
        "CycleGAN": f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, "
                    f"{cfg.train.gan_loss}, lambda_cycle {cfg.train.lambda_cycle:g}, "
                    f"{cfg.model.generator} generator ({cfg.model.n_blocks} blocks, "
                    f"ngf {cfg.model.ngf}, up-sampling {cfg.model.upsample})",
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
    return study


__all__ = ["study_facts"]
