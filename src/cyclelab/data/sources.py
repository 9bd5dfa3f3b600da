"""Builders: from a catalogue entry or a ``data.source`` to ``{trainA,trainB,testA,testB}/``.

A builder fetches what its entry names (through the verified cache of :mod:`.fetch`), unpacks
it safely (:mod:`.extract`) and arranges the files into the four split folders of the
temporary output folder. Builders are looked up by the entry's ``kind`` (``BUILDERS``);
archive layouts by name (``LAYOUTS``); user sources by what ``data.source`` points at
(``SOURCE_KINDS``). Split folders are flat: a file from a nested folder is named
``sub__name.ext``.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import os
import random
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from cyclelab.catalogue import DatasetEntry, RemoteFile, locations
from cyclelab.config import DataConfig
from cyclelab.data.extract import IMAGE_SUFFIXES, Limits, extract_archive
from cyclelab.data.fetch import (
    ChecksumError,
    Fetched,
    FetchOptions,
    fetch,
    is_url,
    local_path,
    sha256_file,
)
from cyclelab.errors import ConfigError, DataError
from cyclelab.paths import LABELS_FILE, SPLITS

_JUNK_DIRS = frozenset({"__MACOSX"})
_MAX_DESCENT = 4


@dataclass
class BuildContext:
    """Everything a builder may use; ``out_dir`` is the temporary folder that becomes data/raw."""

    cfg: DataConfig
    out_dir: Path
    cache_dir: Path
    seed: int
    mirror: str = ""
    fetch_options: FetchOptions = field(default_factory=FetchOptions)
    limits: Limits = field(default_factory=Limits)
    max_per_domain: int = 0

    def scratch(self, name: str) -> Path:
        """A scratch folder inside the output folder (same file system: files move by rename)."""
        path = self.out_dir / f".{name}"
        path.mkdir(parents=True, exist_ok=False)
        return path


@dataclass
class Built:
    """What a builder fetched (for SOURCE.json) and what it wants recorded beside."""

    archives: list[Fetched] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- file layouts

def _visible(folder: Path) -> list[Path]:
    """Children of ``folder`` that are data: no hidden files, no macOS resource forks."""
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith(".") and p.name not in _JUNK_DIRS)


def _files(folder: Path) -> list[Path]:
    """Every data file below ``folder``, sorted, recursing into visible subfolders."""
    found: list[Path] = []
    for path in _visible(folder):
        if path.is_dir():
            found.extend(_files(path))
        elif path.is_file():
            found.append(path)
    return found


def _flat_name(path: Path, base: Path) -> str:
    return "__".join(path.relative_to(base).parts)


def _place(files: list[Path], base: Path, folder: Path, *, move: bool) -> int:
    """Move (our own scratch files) or copy (the user's files) into ``folder``, flattened."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = folder / _flat_name(path, base)
        if target.exists():
            raise DataError(f"{path}: its flattened name {target.name} clashes with another "
                            "file; rename one of them")
        if move:
            os.replace(path, target)
        else:
            shutil.copy2(path, target)
    return len(files)


def descend(root: Path) -> Path:
    """Go down through lone top folders (``apple2orange/`` in the official zips)."""
    current = root
    for _ in range(_MAX_DESCENT):
        if any((current / split).is_dir() for split in SPLITS):
            return current
        folders = [p for p in _visible(current) if p.is_dir()]
        if len(folders) != 1:
            return current
        current = folders[0]
    return current


def _describe(folder: Path) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in _visible(folder)][:8]
    return ", ".join(names) or "nothing"


def arrange_unaligned(root: Path, ctx: BuildContext, *, move: bool) -> dict[str, Any]:
    """``trainA/ trainB/ testA/ testB/`` (possibly under one top folder), kept as delivered."""
    base = descend(root)
    present = [split for split in SPLITS if (base / split).is_dir()]
    if not present:
        raise DataError(f"{root}: expected folders {', '.join(SPLITS)} (possibly under one top "
                        f"folder); found {_describe(base)}")
    for split in SPLITS:
        folder = base / split
        files = _files(folder) if folder.is_dir() else []
        _place(files, folder, ctx.out_dir / split, move=move)
    return {"layout": "unaligned"}


def _test_count(n: int, test_fraction: float) -> int:
    """Test images out of ``n``: the rounded fraction, but at least one of each when n >= 2."""
    if n < 2:
        return 0
    return min(max(round(n * test_fraction), 1), n - 1)


def split_two_folders(folder_a: Path, folder_b: Path, ctx: BuildContext, *,
                      move: bool) -> dict[str, Any]:
    """Two folders of images (any names) -> train/test by ``data.test_fraction``, seeded.

    Each domain is shuffled by its own generator (seed and domain), so adding images to B
    does not change the split of A. Non-image files are skipped and counted.
    """
    details: dict[str, Any] = {"layout": "two_folders", "test_fraction": ctx.cfg.test_fraction,
                               "domains": {}, "skipped": 0}
    for domain, folder in (("A", folder_a), ("B", folder_b)):
        files = _files(folder)
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        details["skipped"] += len(files) - len(images)
        if len(images) < 2:
            raise DataError(f"{folder}: {len(images)} image(s); domain {domain} needs at least 2 "
                            "to split into train and test")
        random.Random(f"{ctx.seed}:{domain}").shuffle(images)
        n_test = _test_count(len(images), ctx.cfg.test_fraction)
        _place(sorted(images[:n_test]), folder, ctx.out_dir / f"test{domain}", move=move)
        _place(sorted(images[n_test:]), folder, ctx.out_dir / f"train{domain}", move=move)
        details["domains"][domain] = folder.name
    return details


def arrange_auto(root: Path, ctx: BuildContext, *, move: bool) -> dict[str, Any]:
    """The four split folders if present, else exactly two folders of images to split."""
    base = descend(root)
    if any((base / split).is_dir() for split in SPLITS):
        return arrange_unaligned(base, ctx, move=move)
    folders = [p for p in _visible(base) if p.is_dir()]
    if len(folders) == 2:
        return split_two_folders(folders[0], folders[1], ctx, move=move)
    raise DataError(f"{root}: expected folders {', '.join(SPLITS)}, or exactly two folders of "
                    f"images (domains A and B); found {_describe(base)}")


def _phase_folders(root: Path) -> dict[str, Path]:
    """``train/`` and ``test/`` (``val/`` when there is no test) of a pix2pix-style set."""
    base = descend(root)
    phases = {"train": base / "train", "test": base / "test"}
    if not phases["test"].is_dir():
        phases["test"] = base / "val"
    missing = [name for name, path in phases.items() if not path.is_dir()]
    if missing:
        raise DataError(f"{root}: expected folders train/ and test/ (or val/); found "
                        f"{_describe(base)}")
    return phases


def arrange_aligned(root: Path, ctx: BuildContext, *, move: bool) -> dict[str, Any]:
    """pix2pix pairs stored side by side (A left, B right): each half becomes one domain."""
    for phase, folder in _phase_folders(root).items():
        for domain in "AB":
            (ctx.out_dir / f"{phase}{domain}").mkdir(parents=True, exist_ok=True)
        for path in tqdm(_files(folder), desc=f"split {phase} pairs", disable=None):
            with Image.open(path) as img:
                pair = img.convert("RGB")
            half = pair.width // 2
            stem = Path(_flat_name(path, folder)).stem
            pair.crop((0, 0, half, pair.height)).save(ctx.out_dir / f"{phase}A" / f"{stem}.png")
            pair.crop((half, 0, 2 * half, pair.height)).save(
                ctx.out_dir / f"{phase}B" / f"{stem}.png")
    return {"layout": "aligned", "note": "A = left half, B = right half of each pair"}


def arrange_colorization(root: Path, ctx: BuildContext, *, move: bool) -> dict[str, Any]:
    """Colour photos: B keeps each file as delivered, A is its greyscale version (PNG)."""
    for phase, folder in _phase_folders(root).items():
        files = _files(folder)
        (ctx.out_dir / f"{phase}A").mkdir(parents=True, exist_ok=True)
        for path in tqdm(files, desc=f"greyscale {phase}", disable=None):
            with Image.open(path) as img:
                grey = img.convert("L")
            grey.save(ctx.out_dir / f"{phase}A" / f"{Path(_flat_name(path, folder)).stem}.png")
        _place(files, folder, ctx.out_dir / f"{phase}B", move=move)
    return {"layout": "colorization", "note": "A = greyscale of B"}


Layout = Callable[..., dict[str, Any]]
LAYOUTS: dict[str, Layout] = {
    "auto": arrange_auto,
    "unaligned": arrange_unaligned,
    "aligned": arrange_aligned,
    "colorization": arrange_colorization,
}


# ---------------------------------------------------------------------------- fetching

def _hint_archive(name: str) -> str:
    return (f"download {name} yourself and set data.source to the file, or set CYCLELAB_MIRROR "
            f"to a folder or URL that holds {name}")


def fetch_remote(remote: RemoteFile, ctx: BuildContext, *, sha256: str = "",
                 hint: str = "") -> Fetched:
    """``remote`` from the mirror or from its URLs, tried in order (first that works)."""
    tried = locations(remote, ctx.mirror)
    failures: list[str] = []
    for index, location in enumerate(tried):
        last = index == len(tried) - 1
        try:
            return fetch(location, ctx.cache_dir, sha256=sha256 or remote.sha256,
                         options=ctx.fetch_options, hint=hint if last else "")
        except ChecksumError:
            raise
        except DataError as exc:
            if not last:
                failures.append(str(exc))
                continue
            if failures:
                raise DataError("; ".join([*failures, str(exc)])) from None
            raise
    raise DataError(f"{remote.name}: no URL to fetch it from; {hint}")


def _extract(fetched: Fetched, ctx: BuildContext, name: str) -> Path:
    root = ctx.scratch(name)
    extract_archive(fetched.path, root, max_total_bytes=ctx.limits.max_total_bytes,
                    max_members=ctx.limits.max_members, max_ratio=ctx.limits.max_ratio)
    return root


def _unpack_and_arrange(fetched: Fetched, ctx: BuildContext, layout: str) -> dict[str, Any]:
    root = _extract(fetched, ctx, "extract")
    details = LAYOUTS[layout](root, ctx, move=True)
    shutil.rmtree(root)
    return details


def _single_sha256(entry: DatasetEntry, ctx: BuildContext) -> str:
    """data.sha256 pins one archive: refuse it for entries made of several files."""
    if ctx.cfg.sha256 and len(entry.files) != 1:
        raise ConfigError(f"data.sha256: pins one archive, but {entry.name} is made of "
                          f"{len(entry.files)} files; leave it empty")
    return ctx.cfg.sha256


# ---------------------------------------------------------------------------- builders

def build_archive(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """An official CycleGAN zip: fetch, verify, extract safely, arrange by ``entry.layout``."""
    remote = entry.files[0]
    fetched = fetch_remote(remote, ctx, sha256=_single_sha256(entry, ctx),
                           hint=_hint_archive(remote.name))
    return Built([fetched], _unpack_and_arrange(fetched, ctx, entry.layout))


def _cityscapes_select(split_map: dict[str, str], suffix: str) -> Callable[[str], str | None]:
    """``leftImg8bit/train/aachen/x_leftImg8bit.png`` -> ``trainA/x_leftImg8bit.png``."""
    def select(rel: str) -> str | None:
        parts = rel.split("/")
        if len(parts) != 4 or parts[1] not in split_map or not parts[3].endswith(suffix):
            return None
        return f"{split_map[parts[1]]}/{parts[3]}"
    return select


# Seed 002's layout: train photos -> trainA, their colour label maps -> trainB; val -> test*.
_CITYSCAPES_PARTS = (
    ("leftImg8bit_trainvaltest.zip", {"train": "trainA", "val": "testA"}, "_leftImg8bit.png"),
    ("gtFine_trainvaltest.zip", {"train": "trainB", "val": "testB"}, "_gtFine_color.png"),
)


def build_cityscapes(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """Cityscapes from the user's own official zips (data.source is their folder)."""
    names = " and ".join(part[0] for part in _CITYSCAPES_PARTS)
    how = (f"log in at https://www.cityscapes-dataset.com/downloads/, download {names}, put "
           "both in one folder and set data.source to it")
    if not ctx.cfg.source:
        raise DataError(f"cityscapes: its licence requires a login: {how}")
    folder = local_path(ctx.cfg.source)
    if not folder.is_dir():
        raise DataError(f"{ctx.cfg.source}: not a folder; cityscapes: {how}")
    built = Built(details={"layout": "cityscapes", "pairs": "trainA/testA photos, "
                           "trainB/testB colour label maps (val is the test split)"})
    for name, split_map, suffix in _CITYSCAPES_PARTS:
        fetched = fetch(str(folder / name), ctx.cache_dir, hint=how)
        extract_archive(fetched.path, ctx.out_dir, select=_cityscapes_select(split_map, suffix),
                        max_total_bytes=ctx.limits.max_total_bytes,
                        max_members=ctx.limits.max_members, max_ratio=ctx.limits.max_ratio)
        built.archives.append(fetched)
    return built


def _read_idx(path: Path, magic: int, kind: str) -> bytes:
    """The bytes of an MNIST idx file (gzipped or not) whose magic number is ``magic``."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable ({_first_line(exc)}); delete it and download it "
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
        raise DataError(f"{path}: not an SVHN .mat file ({_first_line(exc)}); delete it and "
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
        raise DataError(f"{path}: not an SVHN .mat file ({_first_line(exc)}); delete it and "
                        "download it again") from None
    if images.ndim != 4 or images.shape[2] != 3:
        raise DataError(f"{path}: expected X of shape 32x32x3xN, got {images.shape}")
    return np.ascontiguousarray(np.moveaxis(images, 3, 0)).astype(np.uint8, copy=False)


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
        return {}, f"labels unavailable: {_first_line(exc)}"


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
    _single_sha256(entry, ctx)
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _kaggle_credentials() -> bool:
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config / "kaggle.json").is_file() or (config / "access_token").is_file()


def kaggle_api() -> Any:
    """An authenticated Kaggle API client; DataError saying what to do when it cannot be."""
    if importlib.util.find_spec("kaggle") is None:
        raise DataError("kaggle: the kaggle package is not installed: run "
                        "`.venv/bin/pip install kaggle`, then add your API token")
    if not _kaggle_credentials():
        raise DataError("kaggle: no credentials: create a token at kaggle.com > Settings > API "
                        "and save it as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME "
                        "and KAGGLE_KEY")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
    # The client raises assorted types (OSError, ValueError, its own) for bad credentials.
    except Exception as exc:
        raise DataError(f"kaggle: authentication failed ({_first_line(exc)}); check "
                        "~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY") from None
    return api


def kaggle_download(api: Any, slug: str, cache_dir: Path) -> Fetched:
    """The zip of Kaggle dataset ``owner/name``, downloaded once into the cache."""
    folder = Path(cache_dir) / "kaggle" / slug.replace("/", "__")
    zips = sorted(folder.glob("*.zip")) if folder.is_dir() else []
    if not zips:
        # The client writes straight to the final name: download beside, move when complete.
        incoming = folder / ".incoming"
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(parents=True)
        try:
            api.dataset_download_files(slug, path=str(incoming), unzip=False, quiet=False)
        except Exception as exc:  # as in kaggle_api: the client raises assorted types
            raise DataError(f"kaggle: cannot download {slug} ({_first_line(exc)}); check the "
                            "name and accept the dataset's rules on its Kaggle page") from None
        for path in incoming.glob("*.zip"):
            os.replace(path, folder / path.name)
        shutil.rmtree(incoming)
        zips = sorted(folder.glob("*.zip"))
    if not zips:
        raise DataError(f"kaggle: {slug} gave no zip file in {folder}")
    path = zips[0]
    return Fetched(url=f"kaggle:{slug}", path=path, sha256=sha256_file(path),
                   bytes=path.stat().st_size)


def build_kaggle(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """One Kaggle dataset in the four-split layout, or two (domain A, domain B) to split."""
    api = kaggle_api()
    fetched = [kaggle_download(api, slug, ctx.cache_dir) for slug in entry.kaggle]
    if len(fetched) == 1:
        return Built(fetched, _unpack_and_arrange(fetched[0], ctx, entry.layout))
    roots = [_extract(item, ctx, f"extract{domain}") for item, domain in zip(fetched, "AB",
                                                                             strict=True)]
    details = split_two_folders(roots[0], roots[1], ctx, move=True)
    details["domains"] = dict(zip("AB", entry.kaggle, strict=True))
    for root in roots:
        shutil.rmtree(root)
    return Built(fetched, details)


def build_digits(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """The embedded generator: no network, same files for the same seed."""
    from cyclelab.data.digits import generate_digits  # draws with PIL fonts: import on use

    summary = generate_digits(ctx.out_dir, seed=ctx.seed, image_size=ctx.cfg.image_size,
                              train_per_domain=ctx.cfg.digits.train_per_domain,
                              test_per_domain=ctx.cfg.digits.test_per_domain)
    return Built([], {"generator": summary})


Builder = Callable[[DatasetEntry, BuildContext], Built]
BUILDERS: dict[str, Builder] = {
    "archive": build_archive,
    "cityscapes": build_cityscapes,
    "mnist_colored": build_mnist_colored,
    "mnist_svhn": build_mnist_svhn,
    "kaggle": build_kaggle,
    "digits": build_digits,
}


# ---------------------------------------------------------------------------- data.source

def source_kind(source: str) -> str:
    """What ``data.source`` points at: ``kaggle``, ``url``, ``archive`` or ``folder``."""
    if source.startswith("kaggle:"):
        return "kaggle"
    if is_url(source):
        return "url"
    path = local_path(source)
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "archive"
    raise DataError(f"data.source: {source} does not exist (give a folder, a .zip/.tar archive, "
                    "an http(s) URL or kaggle:owner/name)")


def _from_url(source: str, ctx: BuildContext) -> Built:
    fetched = fetch(source, ctx.cache_dir, sha256=ctx.cfg.sha256, options=ctx.fetch_options,
                    hint="download it yourself and set data.source to the local file")
    return Built([fetched], _unpack_and_arrange(fetched, ctx, "auto"))


def _from_archive(source: str, ctx: BuildContext) -> Built:
    fetched = fetch(source, ctx.cache_dir, sha256=ctx.cfg.sha256)
    return Built([fetched], _unpack_and_arrange(fetched, ctx, "auto"))


def _from_folder(source: str, ctx: BuildContext) -> Built:
    if ctx.cfg.sha256:
        raise ConfigError("data.sha256: pins an archive, but data.source is a folder; leave it "
                          "empty")
    folder = local_path(source).resolve()
    return Built([], {**arrange_auto(folder, ctx, move=False), "folder": str(folder)})


def _from_kaggle(source: str, ctx: BuildContext) -> Built:
    fetched = kaggle_download(kaggle_api(), source.removeprefix("kaggle:"), ctx.cache_dir)
    return Built([fetched], _unpack_and_arrange(fetched, ctx, "auto"))


SOURCE_KINDS: dict[str, Callable[[str, BuildContext], Built]] = {
    "url": _from_url,
    "archive": _from_archive,
    "folder": _from_folder,
    "kaggle": _from_kaggle,
}


def build_from_source(source: str, ctx: BuildContext) -> Built:
    """Build from ``data.source`` (which overrides the catalogue)."""
    return SOURCE_KINDS[source_kind(source)](source, ctx)


__all__ = ["SPLITS", "IMAGE_SUFFIXES", "BuildContext", "Built", "LAYOUTS", "BUILDERS",
           "SOURCE_KINDS", "descend", "arrange_auto", "arrange_unaligned", "split_two_folders",
           "arrange_aligned", "arrange_colorization", "fetch_remote", "read_idx_images",
           "read_svhn_mat", "read_idx_labels", "read_svhn_labels", "colorize_digit",
           "kaggle_api", "kaggle_download", "source_kind",
           "build_from_source"]
