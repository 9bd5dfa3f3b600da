"""Stage evaluate@<variant>: translate the test images both ways and score them.

Writes reports/metrics/<variant>.json (DVC metrics: FID, KID, SSIM, PSNR per direction),
reports/eval/<variant>.csv (per image) and data/translated/<variant>/{A_to_B,B_to_A}/*.png."""

from __future__ import annotations

import argparse

from cyclelab.stage import run_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: D103
    parser.add_argument("--variant", required=True, help="a name under variants: in params.yaml")


def main(cfg, args) -> None:  # noqa: D103
    _, model_cfg, _ = cfg.variant(args.variant)

    from PIL import Image

    from cyclelab import config, paths
    from cyclelab.data.dataset import image_files, load_folder
    from cyclelab.io import atomic_dir, write_csv, write_json
    from cyclelab.metrics import load_inception, load_stats
    from cyclelab.metrics.translation import score_direction, translate
    from cyclelab.models import build_generator
    from cyclelab.models.init import load_weights
    from cyclelab.report.grids import display_scale, grid
    from cyclelab.tracking import stage_run
    from cyclelab.training.runtime import make_runtime, seed_everything

    seed_everything(cfg.seed)
    runtime = make_runtime(cfg.device)
    generators = {}
    for name in ("G_ab", "G_ba"):
        net = load_weights(build_generator(model_cfg), paths.model_dir(args.variant) / f"{name}.pt",
                           f"train@{args.variant}")
        generators[name] = runtime.prepare(net).eval()
    inception = load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256, runtime.device)
    directions = {"A_to_B": ("A", "B", generators["G_ab"], generators["G_ba"]),
                  "B_to_A": ("B", "A", generators["G_ba"], generators["G_ab"])}
    metrics, rows, grids = {}, [], []

    with stage_run("evaluate", config.flatten({"variant": args.variant, "eval": cfg.eval,
                                               "model": model_cfg}),
                   variant=args.variant, description=f"evaluation of {args.variant}") as run, \
            atomic_dir(paths.translated_dir(args.variant)) as out:
        for direction, (source, target, forward, backward) in directions.items():
            folder = paths.PREPARED / f"test{source}"
            real = load_folder(folder, limit=cfg.eval.max_images)
            names = [f.name for f in image_files(folder)][:len(real)]
            fake, rec = translate(forward, backward, real, cfg.eval.batch_size, runtime)
            (out / direction).mkdir()
            for name, img in zip(names, fake, strict=True):
                Image.fromarray(img.permute(1, 2, 0).numpy()).save(out / direction / name)
            scores, per_image = score_direction(
                real, fake, rec, load_stats(paths.REFERENCE / f"{target}.npz"), inception,
                cfg.eval, seed=cfg.seed)
            metrics[direction] = scores
            rows += [{"direction": direction, "file": name,
                      **{key: values[i] for key, values in per_image.items()}}
                     for i, name in enumerate(names)]
            grids += [t[:8] for t in (real, fake, rec)]
            run.log_metrics({f"{direction}.{k}": v for k, v in scores.items()})
        run.log_image(grid(grids, scale=display_scale(real.shape[-1])),
                      f"samples/test_{args.variant}.png")
        run.set_tags({"fid_weights_sha256": inception.sha256})
        write_csv(paths.REPORTS / "eval" / f"{args.variant}.csv", rows)
        write_json(paths.METRICS / f"{args.variant}.json", metrics)
    print(f"evaluate@{args.variant}: " + "; ".join(
        f"{d}: " + ", ".join(f"{k}={v:.4g}" for k, v in s.items()) for d, s in metrics.items()))


if __name__ == "__main__":
    raise SystemExit(run_stage("evaluate", main, __doc__, add_arguments))
