"""Scoring a trained translator on a test split: translate, round-trip, then compare.

Distribution metrics (FID, KID) compare the translations with the real images of the target
domain; paired metrics (SSIM, PSNR) compare each image with its translation (how much structure
the mapping keeps, as seeds/000 measured) and with its reconstruction (cycle consistency)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cyclelab.config import EvalConfig
from cyclelab.data.dataset import to_m11, to_uint8
from cyclelab.metrics import compute_distribution, compute_paired, extract_features
from cyclelab.metrics.fid import reference_stats
from cyclelab.metrics.inception import InceptionNet
from cyclelab.training.runtime import Runtime


@torch.no_grad()
def translate(forward: Callable, backward: Callable, real_uint8: torch.Tensor, batch_size: int,
              runtime: Runtime) -> tuple[torch.Tensor, torch.Tensor]:
    """``forward(real)`` and ``backward(forward(real))`` as uint8 N x 3 x H x W, in batches."""
    fakes, recs = [], []
    for start in range(0, len(real_uint8), batch_size):
        real = runtime.tensor(to_m11(real_uint8[start:start + batch_size]))
        with runtime.autocast():
            fake = forward(real)
            rec = backward(fake)
        fakes.append(to_uint8(fake.float().cpu()))
        recs.append(to_uint8(rec.float().cpu()))
    return torch.cat(fakes), torch.cat(recs)


def _hwc(images: torch.Tensor) -> list:
    return [img.permute(1, 2, 0).numpy() for img in images]


def score_direction(real: torch.Tensor, fake: torch.Tensor, rec: torch.Tensor,
                    target_reference: dict[str, Any], inception: InceptionNet, cfg: EvalConfig,
                    seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Headline scores of one direction and the per-image values behind them.

    ``target_reference``: statistics of the real test images of the target domain.
    Keys: ``fid``, ``kid``, ``kid_std``, ``<paired>`` (real vs translated), ``<paired>_cycle``
    (real vs reconstruction), ``n_images``.
    """
    scores: dict[str, float] = {}
    if any(name in ("fid", "kid") for name in cfg.metrics):
        features = extract_features(inception, fake, batch_size=cfg.batch_size)
        scores.update(compute_distribution(cfg.metrics, target_reference,
                                           reference_stats(features, inception.sha256),
                                           cfg, seed=seed))
    if "kid_mean" in scores:
        scores["kid"] = scores.pop("kid_mean")
    real_hwc = _hwc(real)
    per_image: dict[str, list[float]] = {}
    for suffix, other in (("", fake), ("_cycle", rec)):
        for name, values in compute_paired(cfg.metrics, real_hwc, _hwc(other)).items():
            per_image[f"{name}{suffix}"] = [float(v) for v in values]
            scores[f"{name}{suffix}"] = float(values.mean())
    scores["n_images"] = len(real)
    return scores, per_image
