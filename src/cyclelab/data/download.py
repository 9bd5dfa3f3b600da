"""The download stage's library entry: ``data.*`` -> ``data/raw/{trainA,...}`` + SOURCE.json.

What to build comes from ``data.source`` when set (a folder, an archive, an http(s) URL or
``kaggle:owner/name``), else from the catalogue entry ``data.dataset`` (see
:mod:`.catalogue`), except for entries whose files the user must fetch themselves
(cityscapes), which read their folder from ``data.source``. Everything is built in a
temporary folder beside ``out_dir`` that replaces it only when complete: a failure (an
unreachable host, a wrong sha256, a hostile archive) leaves the previous ``out_dir`` as it was.
Downloads live in a cache outside ``out_dir``, so a rerun does not download again and an
interrupted download resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cyclelab.catalogue import CATALOGUE, MIRROR_ENV, lookup
from cyclelab.config import DataConfig
from cyclelab.data.extract import Limits
from cyclelab.data.fetch import FetchOptions
from cyclelab.data.sources import (
    BUILDERS,
    SPLITS,
    BuildContext,
    Built,
    build_from_source,
    source_kind,
)
from cyclelab.errors import DataError
from cyclelab.io import atomic_dir, write_json

SOURCE_FILE = "SOURCE.json"
CACHE_SUBDIR = Path(".cache") / "downloads"


def default_cache_dir() -> Path:
    """``<repo>/.cache/downloads``; the real repository's even inside ``dvc exp run --temp``.

    DVC runs queued and temporary experiments in a copy of the repository that is deleted
    afterwards; ``DVC_ROOT`` names the real one, so downloads survive and are shared.
    """
    return Path(os.environ.get("DVC_ROOT", ".")) / CACHE_SUBDIR


def _count_files(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def _check_splits(out_dir: Path, label: str) -> dict[str, int]:
    """Files per split; DataError naming the first empty split (prepare needs all four)."""
    counts = {split: _count_files(out_dir / split) for split in SPLITS}
    empty = [split for split, count in counts.items() if count == 0]
    if empty:
        raise DataError(f"{label}: gave no files for {', '.join(empty)} (got {counts}); every "
                        "one of trainA, trainB, testA, testB needs images")
    return counts


def _json_safe(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def source_record(cfg: DataConfig, *, kind: str, built: Built, splits: dict[str, int],
                  licence: str, mirror: str, seed: int) -> dict[str, Any]:
    """The SOURCE.json record: where the data came from, its hashes and what was written."""
    archives = [{"url": item.url, "sha256": item.sha256, "bytes": item.bytes}
                for item in built.archives]
    first = archives[0] if archives else {}
    return {
        "dataset": cfg.dataset,
        "kind": kind,
        "source": cfg.source or "catalogue",
        "url": first.get("url", built.details.get("folder", "")),
        "sha256": first.get("sha256", ""),
        "bytes": sum(item["bytes"] for item in archives),
        "archives": archives,
        "files": sum(splits.values()),
        "splits": splits,
        "licence": licence,
        "mirror": mirror,
        "seed": seed,
        "details": _json_safe(built.details),
    }


def download_dataset(
    cfg: DataConfig,
    out_dir: Path,
    *,
    seed: int,
    cache_dir: Path | None = None,
    mirror: str | None = None,
    fetch_options: FetchOptions | None = None,
    max_total_bytes: int = Limits.max_total_bytes,
    max_members: int = Limits.max_members,
    max_per_domain: int = 0,
) -> dict[str, Any]:
    """Build ``out_dir/{trainA,trainB,testA,testB}/`` and ``out_dir/SOURCE.json`` atomically.

    ``mirror`` defaults to ``$CYCLELAB_MIRROR``; ``cache_dir`` to :func:`default_cache_dir`.
    ``max_total_bytes``, ``max_members`` and ``cfg.max_compression_ratio`` cap every
    extraction (zip bombs);
    ``max_per_domain`` (0 = all) caps the MNIST/SVHN builders. Returns the SOURCE record.
    Raises DataError (or ConfigError) with one line on anything the user can fix.
    """
    mirror = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    reads_source = cfg.dataset in CATALOGUE and CATALOGUE[cfg.dataset].needs_source
    entry = None if cfg.source and not reads_source else lookup(cfg.dataset)
    used_mirror = mirror if entry is not None and entry.files and not entry.needs_source else ""
    with atomic_dir(out_dir) as tmp:
        ctx = BuildContext(cfg=cfg, out_dir=tmp, cache_dir=cache_dir, seed=seed, mirror=mirror,
                           fetch_options=fetch_options or FetchOptions(),
                           limits=Limits(max_total_bytes, max_members,
                                         cfg.max_compression_ratio),
                           max_per_domain=max_per_domain)
        if entry is None:
            kind, licence = f"source:{source_kind(cfg.source)}", ""
            built = build_from_source(cfg.source, ctx)
            label = f"data.source {cfg.source}"
        else:
            built, kind, licence = BUILDERS[entry.kind](entry, ctx), entry.kind, entry.licence
            label = f"dataset {entry.name}"
        splits = _check_splits(tmp, label)
        record = source_record(cfg, kind=kind, built=built, splits=splits, licence=licence,
                               mirror=used_mirror, seed=seed)
        write_json(tmp / SOURCE_FILE, record)
    return record


__all__ = ["SOURCE_FILE", "default_cache_dir", "download_dataset", "source_record"]
