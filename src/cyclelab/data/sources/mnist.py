"""The digit families built from MNIST: MNIST <-> coloured MNIST (seeds/003) and MNIST <->
SVHN, with the class labels beside (``labels.csv``) when their files can be fetched."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from cyclelab.catalogue import DatasetEntry
from cyclelab.data.fetch import ChecksumError, Fetched
from cyclelab.data.sources.context import (
    BuildContext,
    Built,
    fetch_remote,
    first_line,
    single_sha256,
)
from cyclelab.data.sources.formats import (
    read_idx_images,
    read_idx_labels,
    read_svhn_labels,
    read_svhn_mat,
)
from cyclelab.errors import DataError
from cyclelab.paths import LABELS_FILE


def colorize_digit(digit: np.ndarray, background: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Seed 003's coloured MNIST: a random crop of a photo, inverted where the digit is.

    ``digit`` is h x w uint8 (white on black); pixels above 127 count as the digit, as in
    Bulten's coloured MNIST that seed 003 followed.
    """
    h, w = digit.shape
    y = int(rng.integers(0, background.shape[0] - h + 1))
    x = int(rng.integers(0, background.shape[1] - w + 1))
    crop = background[y:y + h, x:x + w].copy()
    mask = digit > 127
    crop[mask] = 255 - crop[mask]
    return crop


def _pick(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """All indices, or a seeded sorted subset of ``cap`` of them."""
    if cap and cap < n:
        return np.sort(rng.choice(n, size=cap, replace=False))
    return np.arange(n)


def _write_images(images: np.ndarray, indices: np.ndarray, folder: Path,
                  transform: Callable[[np.ndarray], np.ndarray] | None = None) -> list[str]:
    """Write ``images[indices]`` as ``folder/<index>.png``; return ``<folder>/<name>`` of each."""
    folder.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(images))))
    written = []
    for index in tqdm(indices, desc=folder.name, unit="img", disable=None):
        pixels = images[index] if transform is None else transform(images[index])
        name = f"{int(index):0{width}d}.png"
        Image.fromarray(pixels).save(folder / name)
        written.append(f"{folder.name}/{name}")
    return written


def _fetch_labels(entry: DatasetEntry, ctx: BuildContext) -> tuple[dict[str, Fetched], str]:
    """The entry's label files, or none and why: images without labels are still a dataset."""
    try:
        return {remote.name: fetch_remote(remote, ctx) for remote in entry.label_files}, ""
    except ChecksumError:
        raise
    except DataError as exc:
        return {}, f"labels unavailable: {first_line(exc)}"


def _labels_for(labels: np.ndarray | None, files: list[str], indices: np.ndarray,
                n_images: int, source: str) -> list[tuple[str, str, str, int]]:
    """labels.csv rows (split, domain, file, label) of the images written from ``indices``."""
    if labels is None:
        return []
    if len(labels) != n_images:
        raise DataError(f"{source}: {len(labels)} labels for {n_images} images; delete the "
                        "downloaded files and download them again")
    return [(file.split("/")[0][:-1], file.split("/")[0][-1], file, int(labels[index]))
            for file, index in zip(files, indices, strict=True)]


def _write_labels(out_dir: Path, rows: list[tuple[str, str, str, int]]) -> None:
    """``out_dir/labels.csv`` (prepare carries it into data/prepared), when there are rows."""
    if not rows:
        return
    with open(out_dir / LABELS_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("split", "domain", "file", "label"))
        writer.writerows(rows)


def _fetch_all(entry: DatasetEntry, ctx: BuildContext) -> dict[str, Fetched]:
    single_sha256(entry, ctx)
    hint = (f"download {', '.join(r.name for r in entry.files)} yourself into one folder and "
            "set CYCLELAB_MIRROR to it")
    return {remote.name: fetch_remote(remote, ctx, hint=hint) for remote in entry.files}


def build_mnist_colored(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """MNIST (A) <-> coloured MNIST (B): each MNIST split is shuffled and halved, so A and B
    show different digits; B inverts a random crop of scikit-image's astronaut photo."""
    from skimage.data import astronaut  # packaged image: no download

    fetched = _fetch_all(entry, ctx)
    label_files, why = _fetch_labels(entry, ctx)
    background = astronaut()
    rng = np.random.default_rng(ctx.seed)
    rows: list[tuple[str, str, str, int]] = []
    for split, name in (("train", "train-images-idx3-ubyte.gz"),
                        ("test", "t10k-images-idx3-ubyte.gz")):
        digits = read_idx_images(fetched[name].path)
        label_name = name.replace("images-idx3", "labels-idx1")
        labels = read_idx_labels(label_files[label_name].path) if label_files else None
        order = rng.permutation(len(digits))
        half = len(order) // 2
        cap = ctx.max_per_domain or half
        for domain, indices, transform in (
                ("A", np.sort(order[:half][:cap]), None),
                ("B", np.sort(order[half:][:cap]),
                 lambda d: colorize_digit(d, background, rng))):
            files = _write_images(digits, indices, ctx.out_dir / f"{split}{domain}", transform)
            rows += _labels_for(labels, files, indices, len(digits), label_name)
    _write_labels(ctx.out_dir, rows)
    return Built(list(fetched.values()) + list(label_files.values()),
                 {"layout": "mnist_colored", "background": "astronaut",
                  "max_per_domain": ctx.max_per_domain, "labels": why or LABELS_FILE})


def build_mnist_svhn(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """MNIST (A, 28x28 grey) <-> SVHN cropped digits (B, 32x32 colour), official splits."""
    fetched = _fetch_all(entry, ctx)
    label_files, why = _fetch_labels(entry, ctx)
    rng = np.random.default_rng(ctx.seed)
    sources = (("trainA", "train-images-idx3-ubyte.gz", read_idx_images),
               ("testA", "t10k-images-idx3-ubyte.gz", read_idx_images),
               ("trainB", "train_32x32.mat", read_svhn_mat),
               ("testB", "test_32x32.mat", read_svhn_mat))
    rows: list[tuple[str, str, str, int]] = []
    for folder, name, reader in sources:
        images = reader(fetched[name].path)
        indices = _pick(len(images), ctx.max_per_domain, rng)
        files = _write_images(images, indices, ctx.out_dir / folder)
        if reader is read_svhn_mat:
            labels = read_svhn_labels(fetched[name].path)
        else:
            label_name = name.replace("images-idx3", "labels-idx1")
            labels = read_idx_labels(label_files[label_name].path) if label_files else None
        rows += _labels_for(labels, files, indices, len(images), name)
    _write_labels(ctx.out_dir, rows)
    return Built(list(fetched.values()) + list(label_files.values()),
                 {"layout": "mnist_svhn", "max_per_domain": ctx.max_per_domain,
                  "labels": why or LABELS_FILE})


__all__ = ["colorize_digit", "build_mnist_colored", "build_mnist_svhn"]
