"""Archive and folder layouts -> the four split folders ``{trainA,trainB,testA,testB}/``.

Layouts are looked up by name (``LAYOUTS``: a catalogue entry's ``layout``, or ``auto`` for a
``data.source``). Split folders are flat: a file from a nested folder is named
``sub__name.ext``.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from cyclelab.data.extract import IMAGE_SUFFIXES
from cyclelab.data.fetch import Fetched
from cyclelab.data.sources.context import BuildContext, extract_to_scratch
from cyclelab.errors import DataError
from cyclelab.paths import SPLITS

_JUNK_DIRS = frozenset({"__MACOSX"})
_MAX_DESCENT = 4


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


def unpack_and_arrange(fetched: Fetched, ctx: BuildContext, layout: str) -> dict[str, Any]:
    """Unpack ``fetched`` and arrange its files by ``layout`` (a key of ``LAYOUTS``)."""
    root = extract_to_scratch(fetched, ctx, "extract")
    details = LAYOUTS[layout](root, ctx, move=True)
    shutil.rmtree(root)
    return details


__all__ = ["LAYOUTS", "descend", "arrange_auto", "arrange_unaligned", "split_two_folders",
           "arrange_aligned", "arrange_colorization", "unpack_and_arrange"]
