"""Segmentation scores for photo -> label map (Cityscapes), as the photo->labels columns of the
CycleGAN paper's Tables 2 and 3: every pixel of the generated label map and of the ground truth
is mapped to the nearest colour of the dataset's palette (its catalogue entry's ``palette``),
then the confusion matrix over the evaluation classes (19 for Cityscapes) gives the three means
(the formulas of pix2pix's ``scripts/eval_cityscapes``; ground-truth void pixels are ignored).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cyclelab.catalogue import Palette


def _palette_arrays(palette: Palette) -> tuple[np.ndarray, np.ndarray]:
    """Palette colours (K x 3, int32) and the class of each (n classes: n = void)."""
    n = len(palette.classes)
    colours = [c for _, c in palette.classes] + list(palette.void)
    classes = list(range(n)) + [n] * len(palette.void)
    return np.array(colours, dtype=np.int32), np.array(classes, dtype=np.int64)


def colours_to_classes(img_hwc: np.ndarray, palette: Palette) -> np.ndarray:
    """Class index (0..n-1, n = void; Cityscapes: 19) of every pixel: the nearest palette
    colour's class."""
    colours, classes = _palette_arrays(palette)
    pixels = img_hwc.reshape(-1, 3).astype(np.int32)
    distance = ((pixels[:, None, :] - colours[None, :, :]) ** 2).sum(-1)
    return classes[distance.argmin(1)].reshape(img_hwc.shape[:2])


def confusion(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """n x (n + 1) counts: rows the true class, columns the predicted one (column n: void).

    Pixels whose true class is void (>= n) are left out, as in pix2pix's ``fast_hist``.
    """
    truth, predicted = truth.ravel(), predicted.ravel()
    keep = truth < n_classes
    index = truth[keep] * (n_classes + 1) + np.minimum(predicted[keep], n_classes)
    return np.bincount(index, minlength=n_classes * (n_classes + 1)).reshape(
        n_classes, n_classes + 1)


def segmentation_scores(hist: np.ndarray) -> dict[str, float]:
    """Per-pixel accuracy, mean per-class accuracy and mean class IoU of a confusion matrix.

    Means skip classes absent from the ground truth (their accuracy is 0/0); a class that is
    predicted but absent counts with IoU 0, as in the CycleGAN paper's evaluation code.
    """
    n = hist.shape[0]
    correct = np.diag(hist[:, :n]).astype(np.float64)
    truth_total = hist.sum(1).astype(np.float64)
    predicted_total = hist[:, :n].sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = correct / truth_total
        iou = correct / (truth_total + predicted_total - correct)
    total = truth_total.sum()
    return {"pixel_accuracy": float(correct.sum() / total) if total else math.nan,
            "class_accuracy": float(np.nanmean(class_acc)) if total else math.nan,
            "class_iou": float(np.nanmean(iou)) if total else math.nan}


def label_map_scores(fakes_hwc: Sequence[np.ndarray], truths_hwc: Sequence[np.ndarray],
                     palette: Palette) -> dict[str, float]:
    """The three photo->label scores over all pixels of all pairs, classes by ``palette``."""
    n = len(palette.classes)
    hist = np.zeros((n, n + 1), dtype=np.int64)
    for fake, truth in zip(fakes_hwc, truths_hwc, strict=True):
        hist += confusion(colours_to_classes(truth, palette), colours_to_classes(fake, palette), n)
    return segmentation_scores(hist)


__all__ = ["colours_to_classes", "confusion", "segmentation_scores", "label_map_scores"]
