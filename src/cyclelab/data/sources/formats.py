"""File formats of the digit sets: MNIST idx files (images, labels) and SVHN ``.mat`` files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from cyclelab.data.sources.context import first_line
from cyclelab.errors import DataError


def _read_idx(path: Path, magic: int, kind: str) -> bytes:
    """The bytes of an MNIST idx file (gzipped or not) whose magic number is ``magic``."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable ({first_line(exc)}); delete it and download it "
                        "again") from None
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != magic:
        raise DataError(f"{path}: not an MNIST {kind} file (bad magic number)")
    return data


def read_idx_images(path: Path) -> np.ndarray:
    """The N x rows x cols uint8 images of an MNIST idx3 file (gzipped or not)."""
    data = _read_idx(path, 0x00000803, "idx3 image")
    if len(data) < 16:
        raise DataError(f"{path}: truncated MNIST file; delete it and download it again")
    n, rows, cols = struct.unpack(">III", data[4:16])
    if len(data) != 16 + n * rows * cols:
        raise DataError(f"{path}: truncated MNIST file ({len(data) - 16} bytes for {n} images of "
                        f"{rows}x{cols}); delete it and download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def read_idx_labels(path: Path) -> np.ndarray:
    """The N uint8 class labels of an MNIST idx1 file (gzipped or not)."""
    data = _read_idx(path, 0x00000801, "idx1 label")
    (n,) = struct.unpack(">I", data[4:8])
    if len(data) != 8 + n:
        raise DataError(f"{path}: truncated MNIST label file; delete it and download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def read_svhn_labels(path: Path) -> np.ndarray | None:
    """The digit of each image of an SVHN ``*_32x32.mat`` file (its ``y``; SVHN writes 0 as
    10), or None when the file has no ``y``."""
    from scipy.io import loadmat

    try:
        found = loadmat(path, variable_names=["y"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not an SVHN .mat file ({first_line(exc)}); delete it and "
                        "download it again") from None
    if "y" not in found:
        return None
    return (np.asarray(found["y"]).reshape(-1).astype(np.int64) % 10).astype(np.uint8)


def read_svhn_mat(path: Path) -> np.ndarray:
    """The N x 32 x 32 x 3 uint8 images of an SVHN ``*_32x32.mat`` file."""
    from scipy.io import loadmat  # scipy is heavy: only SVHN needs it

    try:
        images = loadmat(path, variable_names=["X"])["X"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not an SVHN .mat file ({first_line(exc)}); delete it and "
                        "download it again") from None
    if images.ndim != 4 or images.shape[2] != 3:
        raise DataError(f"{path}: expected X of shape 32x32x3xN, got {images.shape}")
    return np.ascontiguousarray(np.moveaxis(images, 3, 0)).astype(np.uint8, copy=False)


__all__ = ["read_idx_images", "read_idx_labels", "read_svhn_labels", "read_svhn_mat"]
