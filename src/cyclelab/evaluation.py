"""What stage ``evaluate@<variant>-<seed>`` does: translate the test images both ways with one
trained run's generators and score them, in fp32 on every device.

Writes data/translated/<variant>/s<seed>/{A_to_B,B_to_A}/*.png and features.npz (the
translations' Inception features, which the report resamples to test differences between
variants), reports/eval/<variant>/s<seed>.csv (per image) and reports/seeds/<variant>/
s<seed>.json (per direction: the scores, the identity and floor lines of the reference stage,
how the weights were trained and ``eval_precision``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cyclelab import config, paths
from cyclelab.config import Config, EvalConfig
from cyclelab.data.dataset import image_files, load_folder
from cyclelab.directions import DIRECTIONS, GENERATORS, GRID_ROWS
from cyclelab.io import atomic_dir, atomic_path, read_json, write_csv, write_json
from cyclelab.metrics import compute_paired, extract_features, load_inception, load_stats
from cyclelab.metrics.fid import fid_from_stats, reference_stats
from cyclelab.metrics.inception import InceptionNet
from cyclelab.metrics.inception_score import load_is_network, unavailable_reason
from cyclelab.metrics.semantic import semantic_scores
from cyclelab.metrics.translation import eval_runtime, score_direction, translate
from cyclelab.models.build import build_generator
from cyclelab.models.init import load_weights
from cyclelab.report.grids import display_scale, grid
from cyclelab.runtime import Runtime, seed_everything
from cyclelab.tracking import stage_run


def load_run_generators(cfg: Config, variant: str, seed: int,
                        runtime: Runtime) -> dict[str, torch.nn.Module]:
    """G_ab and G_ba of one trained run, on ``runtime``'s device, in eval mode."""
    model_cfg = cfg.variant(variant)[1]
    return {name: runtime.prepare(load_weights(
        build_generator(model_cfg, cfg.data.image_size),
        paths.model_dir(variant, seed) / f"{name}.pt", f"train@{variant}-{seed}")).eval()
        for name in GENERATORS}


def _save_translations(folder: Path, names: list[str], fake: torch.Tensor) -> None:
    folder.mkdir()
    for name, img in zip(names, fake, strict=True):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / name)


def report_pairs(real: torch.Tensor, fake: torch.Tensor, rec: torch.Tensor,
                 fake_features: np.ndarray | None, inception: InceptionNet, cfg: EvalConfig,
                 ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """seeds/000's comparisons (its Figs 10-11), with ``eval.fid_cycle``: FID of the real source
    images against the set of their translations (``fid_real_fake``) and of the reconstructions
    against the translations (``fid_rec_fake``); SSIM/PSNR of each reconstruction against its
    translation (``ssim_rec_fake``; real against fake is ``ssim``). The per-image values too.

    These pairs measure how far a translation moved from its input, not how much it looks like
    the target domain: doing nothing scores FID 0 on ``fid_real_fake``. They are reported to
    compare with the report, beside the standard FID against the target domain.
    """
    if not cfg.fid_cycle:
        return {}, {}
    scores: dict[str, float] = {}
    if fake_features is not None:
        stats = {name: reference_stats(extract_features(inception, images, cfg.batch_size,
                                                        progress=False), inception.sha256)
                 for name, images in (("real", real), ("rec", rec))}
        fake_stats = reference_stats(fake_features, inception.sha256)
        scores |= {f"fid_{name}_fake": fid_from_stats(stats[name], fake_stats) for name in stats}
    per_image = {f"{name}_rec_fake": [float(v) for v in values] for name, values in
                 compute_paired(cfg.metrics, rec.permute(0, 2, 3, 1).numpy(),
                                fake.permute(0, 2, 3, 1).numpy()).items()}
    scores |= {key: float(np.mean(values)) for key, values in per_image.items()}
    return scores, per_image


def evaluate_run(cfg: Config, variant: str, seed: int) -> dict[str, dict[str, Any]]:
    """Translate and score both directions of ``variant``'s run ``seed``; write every output;
    return the per-direction scores (what reports/seeds/<variant>/s<seed>.json holds)."""
    seed_everything(seed)
    runtime = eval_runtime(cfg.device)  # fp32 whatever train.precision was
    generators = load_run_generators(cfg, variant, seed, runtime)
    meta = read_json(paths.model_dir(variant, seed) / "meta.json",
                     f"dvc repro train@{variant}-{seed}")
    # How the weights were trained: CPU fp32 and GPU bf16 runs are not comparable.
    trained = {"train_precision": meta.get("precision", "unknown"),
               "train_device": meta.get("device", "unknown")}
    inception = load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256, runtime.device)
    is_net = None if unavailable_reason(cfg.eval) else load_is_network(
        cfg.eval.is_weights, cfg.eval.is_weights_sha256, runtime.device)
    reference = {d: load_stats(paths.REFERENCE / f"{d}.npz") for d in ("A", "B")}
    lines = read_json(paths.REFERENCE / "lines.json", "dvc repro reference")
    metrics: dict[str, dict[str, Any]] = {}
    rows, grids, features = [], [], {}
    model_cfg = cfg.variant(variant)[1]
    params = config.flatten({"variant": variant, "seed": seed, "eval": cfg.eval,
                             "model": model_cfg})
    with stage_run("evaluate", params, variant=variant, seed=seed,
                   description=f"evaluation of {variant}, seed {seed}") as tracker, \
            atomic_dir(paths.translated_dir(variant, seed)) as out:
        for direction, _, _, source, target, forward, backward in DIRECTIONS:
            folder = paths.PREPARED / f"test{source}"
            real = load_folder(folder, limit=cfg.eval.max_images)
            names = [f.name for f in image_files(folder)][:len(real)]
            fake, rec = translate(generators[forward], generators[backward], real,
                                  cfg.eval.batch_size, runtime)
            _save_translations(out / direction, names, fake)
            scores, per_image, feats = score_direction(
                real, fake, rec, reference[target], inception, cfg.eval, seed=seed,
                source_reference=reference[source], is_net=is_net)
            pairs, pair_images = report_pairs(real, fake, rec, feats, inception, cfg.eval)
            scores |= pairs
            per_image |= pair_images
            if feats is not None:
                features[direction] = feats.astype(np.float32)
            scores |= semantic_scores(direction, names, fake, prepared=paths.PREPARED,
                                      classifier_dir=paths.CLASSIFIER,
                                      dataset=cfg.data.dataset, runtime=runtime)
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
        tracker.log_image(grid(grids, scale=display_scale(cfg.data.image_size),
                               labels=GRID_ROWS), f"samples/test_{variant}_s{seed}.png")
        tracker.set_tags({"fid_weights_sha256": inception.sha256,
                          "is_weights_sha256": is_net.sha256 if is_net else "",
                          "is_unavailable": unavailable_reason(cfg.eval) or ""})
        write_csv(paths.REPORTS / "eval" / f"{paths.run_name(variant, seed)}.csv", rows)
        write_json(paths.seed_metrics(variant, seed), metrics)
    return metrics
