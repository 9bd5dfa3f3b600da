"""Cityscapes from the user's own official zips (its licence requires a login)."""

from __future__ import annotations

from collections.abc import Callable

from cyclelab.catalogue import DatasetEntry
from cyclelab.data.extract import extract_archive
from cyclelab.data.fetch import fetch, local_path
from cyclelab.data.sources.context import BuildContext, Built
from cyclelab.errors import DataError


def _cityscapes_select(split_map: dict[str, str], suffix: str) -> Callable[[str], str | None]:
    """``leftImg8bit/train/aachen/x_leftImg8bit.png`` -> ``trainA/x_leftImg8bit.png``."""
    def select(rel: str) -> str | None:
        parts = rel.split("/")
        if len(parts) != 4 or parts[1] not in split_map or not parts[3].endswith(suffix):
            return None
        return f"{split_map[parts[1]]}/{parts[3]}"
    return select


# Seed 002's layout: train photos -> trainA, their colour label maps -> trainB; val -> test*.
# Of each zip only the files with the domain's pair suffix (the catalogue entry's) are kept.
_CITYSCAPES_PARTS = (
    ("leftImg8bit_trainvaltest.zip", {"train": "trainA", "val": "testA"}),
    ("gtFine_trainvaltest.zip", {"train": "trainB", "val": "testB"}),
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
    for (name, split_map), suffix in zip(_CITYSCAPES_PARTS, entry.pair_suffixes, strict=True):
        fetched = fetch(str(folder / name), ctx.cache_dir, hint=how)
        extract_archive(fetched.path, ctx.out_dir,
                        select=_cityscapes_select(split_map, f"{suffix}.png"),
                        max_total_bytes=ctx.limits.max_total_bytes,
                        max_members=ctx.limits.max_members, max_ratio=ctx.limits.max_ratio)
        built.archives.append(fetched)
    return built


__all__ = ["build_cityscapes"]
