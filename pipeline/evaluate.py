"""Stage evaluate@<variant>-<seed>: translate the test images both ways and score them.

Runs in fp32 on every device, whatever train.precision (``eval_precision`` beside the scores).
Writes reports/seeds/<variant>/s<seed>.json (DVC metrics per direction: FID and KID with
bootstrap 95 % CIs, the identity and floor lines of the reference stage, SSIM, PSNR, ...),
reports/eval/<variant>/s<seed>.csv (per image) and data/translated/<variant>/s<seed>/
{A_to_B,B_to_A}/*.png with features.npz (Inception features of the translations, which the
report resamples to test differences between variants)."""

from __future__ import annotations

from cyclelab.stage import add_run_arguments, run_seed, run_stage


def main(cfg, args) -> None:  # noqa: D103
    _, model_cfg, _ = cfg.variant(args.variant)
    seed = run_seed(cfg, args.seed)

    import numpy as np
    from PIL import Image

    from cyclelab import config, paths
    from cyclelab.data.dataset import image_files, load_folder
    from cyclelab.io import atomic_dir, atomic_path, read_json, write_csv, write_json
    from cyclelab.metrics import load_inception, load_stats
    from cyclelab.metrics.inception_score import load_is_network, unavailable_reason
    from cyclelab.metrics.semantic import semantic_scores
    from cyclelab.metrics.translation import eval_runtime, score_direction, translate
    from cyclelab.models import build_generator
    from cyclelab.models.init import load_weights
    from cyclelab.report.grids import display_scale, grid
    from cyclelab.runtime import seed_everything
    from cyclelab.tracking import stage_run

    seed_everything(seed)
    runtime = eval_runtime(cfg.device)  # fp32 whatever train.precision was
    run = paths.run_name(args.variant, seed)
    generators = {}
    for name in ("G_ab", "G_ba"):
        net = load_weights(build_generator(model_cfg, cfg.data.image_size),
                           paths.model_dir(args.variant, seed) / f"{name}.pt",
                           f"train@{args.variant}-{seed}")
        generators[name] = runtime.prepare(net).eval()
    meta = read_json(paths.model_dir(args.variant, seed) / "meta.json",
                     f"dvc repro train@{args.variant}-{seed}")
    trained = {"train_precision": meta.get("precision", "unknown"),
               "train_device": meta.get("device", "unknown")}
    inception = load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256, runtime.device)
    is_net = None if unavailable_reason(cfg.eval) else load_is_network(
        cfg.eval.is_weights, cfg.eval.is_weights_sha256, runtime.device)
    reference = {d: load_stats(paths.REFERENCE / f"{d}.npz") for d in ("A", "B")}
    lines = read_json(paths.REFERENCE / "lines.json", "dvc repro reference")
    directions = {"A_to_B": ("A", "B", generators["G_ab"], generators["G_ba"]),
                  "B_to_A": ("B", "A", generators["G_ba"], generators["G_ab"])}
    metrics, rows, grids, features = {}, [], [], {}

    with stage_run("evaluate", config.flatten({"variant": args.variant, "seed": seed,
                                               "eval": cfg.eval, "model": model_cfg}),
                   variant=args.variant, seed=seed,
                   description=f"evaluation of {args.variant}, seed {seed}") as tracker, \
            atomic_dir(paths.translated_dir(args.variant, seed)) as out:
        for direction, (source, target, forward, backward) in directions.items():
            folder = paths.PREPARED / f"test{source}"
            real = load_folder(folder, limit=cfg.eval.max_images)
            names = [f.name for f in image_files(folder)][:len(real)]
            fake, rec = translate(forward, backward, real, cfg.eval.batch_size, runtime)
            (out / direction).mkdir()
            for name, img in zip(names, fake, strict=True):
                Image.fromarray(img.permute(1, 2, 0).numpy()).save(out / direction / name)
            scores, per_image, feats = score_direction(
                real, fake, rec, reference[target], inception, cfg.eval, seed=seed,
                source_reference=reference[source], is_net=is_net)
            if feats is not None:
                features[direction] = feats.astype(np.float32)
            semantic = semantic_scores(direction, names, fake, prepared=paths.PREPARED,
                                       classifier_dir=paths.CLASSIFIER,
                                       dataset=cfg.data.dataset, runtime=runtime)
            scores |= semantic
            # How the weights were trained (CPU fp32 and GPU bf16 runs are not comparable) and
            # the precision these scores were computed in.
            metrics[direction] = {**scores, **lines[direction], **trained,
                                  "eval_precision": runtime.precision}
            rows += [{"direction": direction, "file": name,
                      **{key: values[i] for key, values in per_image.items()}}
                     for i, name in enumerate(names)]
            grids += [t[:8] for t in (real, fake, rec)]
            tracker.log_metrics({f"{direction}.{k}": v for k, v in scores.items()
                                 if isinstance(v, int | float)})
        if features:
            with atomic_path(out / "features.npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **features)
        tracker.log_image(grid(grids, scale=display_scale(real.shape[-1]),
                               labels=("real A", "A→B", "A→B→A", "real B", "B→A", "B→A→B")),
                          f"samples/test_{args.variant}_s{seed}.png")
        tracker.set_tags({"fid_weights_sha256": inception.sha256,
                          "is_weights_sha256": is_net.sha256 if is_net else "",
                          "is_unavailable": unavailable_reason(cfg.eval) or ""})
        write_csv(paths.REPORTS / "eval" / f"{run}.csv", rows)
        write_json(paths.seed_metrics(args.variant, seed), metrics)
    print(f"evaluate@{args.variant}-{seed}: " + "; ".join(
        f"{d}: " + ", ".join(f"{k}={v:.4g}" for k, v in s.items() if isinstance(v, int | float))
        for d, s in metrics.items()))


if __name__ == "__main__":
    raise SystemExit(run_stage("evaluate", main, __doc__, add_run_arguments))
