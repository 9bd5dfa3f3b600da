"""Paired scores for the catalogue sets whose test images come in pairs (the same scene in A
and B; the entry's ``pair_suffixes``): each translation against its ground-truth partner in
the target test folder, by L1, PSNR and SSIM.

The pairing is in the prepared file names: the same stem in both folders (aligned pix2pix
halves, colorization), or a stem with a per-domain suffix: maps/facades ``1_A.png`` <->
``1_B.png``, Cityscapes ``x_leftImg8bit.png`` <-> ``x_gtFine_color.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cyclelab.data.dataset import read_rgb
from cyclelab.errors import DataError
from cyclelab.metrics.similarity import psnr, ssim


def pair_key(name: str, suffixes: Sequence[str]) -> str:
    """The scene a prepared file shows: its stem without a per-domain suffix (one of
    ``suffixes``, the dataset's ``pair_suffixes``)."""
    stem = Path(name).stem
    for suffix in suffixes:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[:-len(suffix)]
    return stem


def find_partners(source_names: Sequence[str], target_dir: Path, suffixes: Sequence[str]
                  ) -> list[Path | None]:
    """The ground-truth partner of each source image in ``target_dir`` (None if it has none);
    ``suffixes``: as for :func:`pair_key`."""
    by_key: dict[str, Path] = {}
    for path in sorted(Path(target_dir).glob("*.png")):
        by_key.setdefault(pair_key(path.name, suffixes), path)
    return [by_key.get(pair_key(name, suffixes)) for name in source_names]


def _shape(img_hwc: np.ndarray) -> str:
    return "×".join(map(str, img_hwc.shape))


def partner_pairs(source_dir: Path, source_names: Sequence[str], fake: torch.Tensor,
                  target_dir: Path, suffixes: Sequence[str]
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each translation (``fake``: uint8 N x 3 x H x W of ``source_names`` in ``source_dir``)
    as H x W x 3 with its ground-truth partner in ``target_dir``; images without a partner are
    left out. DataError when a partner's size differs from its translation's."""
    pairs = []
    partners = find_partners(source_names, target_dir, suffixes)
    for i, (name, path) in enumerate(zip(source_names, partners, strict=True)):
        if path is None:  # no ground truth for this image: counted out in paired_n
            continue
        fake_hwc, truth = fake[i].permute(1, 2, 0).numpy(), read_rgb(path)
        if fake_hwc.shape != truth.shape:
            raise DataError(
                f"{Path(source_dir) / name} translates to {_shape(fake_hwc)} but "
                f"its ground-truth partner {path} is {_shape(truth)}; paired scores need "
                "both at one size: rerun `dvc repro prepare` so that both domains are "
                "prepared at data.image_size")
        pairs.append((fake_hwc, truth))
    return pairs


def paired_scores(fakes_hwc: Sequence[np.ndarray], truths_hwc: Sequence[np.ndarray]
                  ) -> dict[str, float]:
    """Mean L1 (pixel values in [0, 1]), PSNR (dB) and SSIM of each translation vs its truth."""
    pairs = list(zip(fakes_hwc, truths_hwc, strict=True))
    l1 = [np.abs(f.astype(np.float64) - t.astype(np.float64)).mean() / 255.0 for f, t in pairs]
    return {"paired_l1": float(np.mean(l1)),
            "paired_psnr": float(np.mean([psnr(f, t) for f, t in pairs])),
            "paired_ssim": float(np.mean([ssim(f, t) for f, t in pairs])),
            "paired_n": float(len(pairs))}


__all__ = ["pair_key", "find_partners", "partner_pairs", "paired_scores"]
