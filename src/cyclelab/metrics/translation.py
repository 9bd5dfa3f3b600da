"""Scoring a trained translator on a test split: translate, round-trip, then compare.

Distribution metrics (FID, KID) compare the translations with the real images of the target
domain; paired metrics (SSIM, PSNR) compare each image with its translation (how much structure
the mapping keeps, as seeds/000 measured) and with its reconstruction (cycle consistency)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from cyclelab.config import EvalConfig
from cyclelab.data.dataset import to_m11, to_uint8
from cyclelab.directions import DIRECTIONS
from cyclelab.metric_registry import DISTRIBUTION, METRICS
from cyclelab.metrics import compute_distribution, compute_paired, extract_features
from cyclelab.metrics.fid import fid_from_stats, reference_stats
from cyclelab.metrics.inception import InceptionNet
from cyclelab.metrics.inception_score import LOGITS_KEY, class_logits
from cyclelab.metrics.uncertainty import score_with_ci
from cyclelab.runtime import Runtime, make_runtime

# Scores are compared across variants and with published values: every evaluation network pass
# (translation, round trip, features, classifier) runs in full precision, whatever the run
# trained in (bf16 autocast shifts FID by more than the differences studies look for).
EVAL_PRECISION = "fp32"


def eval_runtime(device: str = "auto") -> Runtime:
    """The :class:`Runtime` of ``evaluate`` and ``reference``: ``device`` (params.yaml's) at
    :data:`EVAL_PRECISION`, never ``train.precision``. On CUDA it also turns TF32 off for the
    process (only these stages call it): PyTorch lets cuDNN run fp32 convolutions in TF32 on
    Ampere and newer GPUs by default, which would make "fp32" scores depend on the card."""
    runtime = make_runtime(device, EVAL_PRECISION)
    if runtime.cuda:  # PyTorch's fp32_precision API (mixing in allow_tf32 is an error)
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    return runtime


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


def distribution_scores(fake_features: np.ndarray, real: dict[str, Any], cfg: EvalConfig,
                        seed: int = 0, weights_sha256: str = "",
                        logits: np.ndarray | None = None) -> dict[str, Any]:
    """FID/KID (those of ``cfg.metrics``) of translated features against real statistics.

    ``real``: :func:`reference_stats` of the real target set (with its features). Keys: ``fid``,
    ``kid`` and, when ``cfg.bootstrap`` > 0, ``fid_ci95`` / ``kid_ci95`` (bootstrap over both
    image sets, :mod:`.uncertainty`); ``is``, ``is_std``, ``gms`` when the IS network's class
    ``logits`` of the translations are given.

    ``kid`` and ``kid_ci95`` come from one estimator: the unbiased MMD² U-statistic over every
    image of both sets, and the bootstrap of that same statistic. ``kid_subset_mean`` /
    ``kid_subset_std`` are the mean and std over ``eval.kid_subsets`` random subsets (the
    estimate torch-fidelity and clean-fid publish), kept only to compare with published values.
    """
    fake = reference_stats(fake_features, weights_sha256)
    if logits is not None:
        fake[LOGITS_KEY] = logits
    scores: dict[str, Any] = compute_distribution(cfg.metrics, real, fake, cfg, seed=seed)
    if "kid_mean" in scores:
        # "kid_std" is kept for the std over seeds (compare stage).
        scores["kid_subset_mean"] = scores.pop("kid_mean")
        scores["kid_subset_std"] = scores.pop("kid_std")
    if "kid_subset_mean" in scores or (cfg.bootstrap and "fid" in scores):
        full = score_with_ci(fake_features, real["features"], cfg.bootstrap, seed)
        if "kid_subset_mean" in scores:
            scores["kid"] = full["kid"]
        scores.update({f"{k}_ci95": full[f"{k}_ci95"] for k in list(scores)
                       if f"{k}_ci95" in full})
    return scores


def score_direction(real: torch.Tensor, fake: torch.Tensor, rec: torch.Tensor,
                    target_reference: dict[str, Any], inception: InceptionNet, cfg: EvalConfig,
                    seed: int = 0, source_reference: dict[str, Any] | None = None,
                    is_net: InceptionNet | None = None,
                    ) -> tuple[dict[str, Any], dict[str, list[float]], np.ndarray | None]:
    """Headline scores of one direction, the per-image values behind them, and the Inception
    features of the translations (None when no distribution metric is asked for).

    ``target_reference``: statistics of the real test images of the target domain.
    ``source_reference``: those of the source domain; with ``cfg.fid_cycle`` the
    reconstructions are scored against them (``fid_rec``, seeds/000's second FID pair).
    Keys: see :func:`distribution_scores`, ``<paired>`` (real vs translated), ``<paired>_cycle``
    (real vs reconstruction), ``n_images``. ``is_net``: the IS network (``eval.is_weights``),
    for ``is`` and ``gms``.
    """
    scores: dict[str, Any] = {}
    features = None
    if any(METRICS[name].kind == DISTRIBUTION for name in cfg.metrics):
        features = extract_features(inception, fake, batch_size=cfg.batch_size)
        logits = None if is_net is None else class_logits(is_net, fake, cfg.batch_size)
        scores.update(distribution_scores(features, target_reference, cfg, seed,
                                          inception.sha256, logits))
        if cfg.fid_cycle and source_reference is not None:
            rec_features = extract_features(inception, rec, batch_size=cfg.batch_size)
            scores["fid_rec"] = fid_from_stats(source_reference,
                                               reference_stats(rec_features, inception.sha256))
    real_hwc = _hwc(real)
    per_image: dict[str, list[float]] = {}
    for suffix, other in (("", fake), ("_cycle", rec)):
        for name, values in compute_paired(cfg.metrics, real_hwc, _hwc(other)).items():
            per_image[f"{name}{suffix}"] = [float(v) for v in values]
            scores[f"{name}{suffix}"] = float(values.mean())
    scores["n_images"] = len(real)
    return scores, per_image, features


def as_line(scores: dict[str, Any], line: str,
            names: Sequence[str] | None = None) -> dict[str, Any]:
    """``scores`` renamed for a reference line: the metric's name (the longest of ``names``,
    default the registered metrics, that the key starts with), then ``line``, then the rest of
    the key (``fid_ci95`` -> ``fid_identity_ci95``, ``kid_subset_mean`` ->
    ``kid_identity_subset_mean``)."""
    names = tuple(METRICS) if names is None else names
    out = {}
    for key, value in scores.items():
        name = max((n for n in names if key == n or key.startswith(f"{n}_")), key=len,
                   default=None)
        if name is None:
            raise KeyError(f"{key}: not a score of a registered metric ({', '.join(names)})")
        out[f"{name}_{line}{key[len(name):]}"] = value
    return out


class CurveScorer:
    """FID/KID and the paired metrics (SSIM, PSNR of real against translated) of ``metrics``
    (default ``eval.metrics``) for both directions on a fixed subset of the validation images,
    during training: the ``eval.every_k_epochs`` curve (seeds/000 Fig. 12 is SSIM of real
    against fake every 5 epochs) and staged training's candidates (:mod:`cyclelab.training.staged`).
    The real subsets' features and statistics are computed once; each call translates the
    subsets and scores them (no CIs: a curve, not a result)."""

    def __init__(self, inception: InceptionNet, val_a: torch.Tensor, val_b: torch.Tensor,
                 cfg: EvalConfig, seed: int = 0, metrics: Sequence[str] | None = None,
                 is_net: InceptionNet | None = None) -> None:
        self.inception, self.seed, self.is_net = inception, seed, is_net
        self.cfg = dataclasses.replace(cfg, bootstrap=0, fid_cycle=False,
                                       metrics=list(cfg.metrics if metrics is None else metrics))
        self.real = {"A": val_a, "B": val_b}
        self.stats = {d: reference_stats(extract_features(inception, imgs, cfg.batch_size,
                                                          progress=False), inception.sha256)
                      for d, imgs in self.real.items()}

    def __call__(self, G_ab: torch.nn.Module, G_ba: torch.nn.Module,
                 runtime: Runtime) -> dict[str, float]:
        """``{<metric>_A_to_B, <metric>_B_to_A}`` of the generators now, for each of ``fid``,
        ``kid``, ``ssim`` and ``psnr`` that the metrics name (paired metrics: the mean over the
        subset's pairs); the generators' train/eval modes are left as they were."""
        nets = (G_ab, G_ba)
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            scores = {}
            for direction, forward in zip(DIRECTIONS, nets, strict=True):
                source, target, direction = direction.source, direction.target, direction.key
                fake, _ = translate(forward, lambda x: x, self.real[source],
                                    self.cfg.batch_size, runtime)
                features = extract_features(self.inception, fake, self.cfg.batch_size,
                                            progress=False)
                logits = None  # IS and GMS read the IS network's class logits (is_net)
                if self.is_net is not None and {"is", "gms"} & set(self.cfg.metrics):
                    from cyclelab.metrics.inception_score import class_logits

                    logits = class_logits(self.is_net, fake, self.cfg.batch_size,
                                          progress=False)
                result = distribution_scores(features, self.stats[target], self.cfg, self.seed,
                                             self.inception.sha256, logits)
                paired = compute_paired(self.cfg.metrics, _hwc(self.real[source]), _hwc(fake))
                scores |= {f"{k}_{direction}": v for k, v in result.items() if k in METRICS}
                scores |= {f"{k}_{direction}": float(v.mean()) for k, v in paired.items()}
        finally:
            for net, mode in zip(nets, modes, strict=True):
                net.train(mode)
        return scores
