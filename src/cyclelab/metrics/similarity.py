"""Paired image similarity: SSIM and PSNR of uint8 H×W×3 RGB images (scikit-image).

PSNR of identical images is infinite; it is capped at :data:`PSNR_CAP_DB` so metrics files stay
valid JSON. Different images up to 128×128 stay below the cap (a single 8-bit step in one
channel of one pixel gives 95 dB there); from about 230×230 on, such a near-identical pair
reaches it too (101 dB at 256×256) and is reported as 100 like an identical one.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP_DB = 100.0
DATA_RANGE = 255


def _check_pair(img_a: np.ndarray, img_b: np.ndarray) -> None:
    """Both images uint8 H×W×3 of the same shape (a wrong call is a bug, not a user error)."""
    for img in (img_a, img_b):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"expected a uint8 H×W×3 image, got {img.dtype} {img.shape}")
    if img_a.shape != img_b.shape:
        raise ValueError(f"image shapes differ: {img_a.shape} vs {img_b.shape}")


def ssim(img_a: np.ndarray, img_b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004), 7×7 uniform windows, averaged over channels."""
    _check_pair(img_a, img_b)
    from skimage.metrics import structural_similarity  # scipy: 0.5 s, on first use

    return float(structural_similarity(img_a, img_b, channel_axis=-1, data_range=DATA_RANGE))


def psnr(img_a: np.ndarray, img_b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, capped at :data:`PSNR_CAP_DB` (identical images)."""
    _check_pair(img_a, img_b)
    if np.array_equal(img_a, img_b):
        return PSNR_CAP_DB  # skimage would divide by a zero error and return inf
    from skimage.metrics import peak_signal_noise_ratio

    return min(float(peak_signal_noise_ratio(img_a, img_b, data_range=DATA_RANGE)), PSNR_CAP_DB)
