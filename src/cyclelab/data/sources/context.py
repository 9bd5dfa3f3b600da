"""What every builder shares: its context (:class:`BuildContext`), its result (:class:`Built`),
fetching a catalogue file from the mirror or its URLs, and unpacking into scratch folders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclelab.catalogue import DatasetEntry, RemoteFile, locations
from cyclelab.config import DataConfig
from cyclelab.data.extract import Limits, extract_archive
from cyclelab.data.fetch import ChecksumError, Fetched, FetchOptions, fetch
from cyclelab.errors import ConfigError, DataError


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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none): one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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


def extract_to_scratch(fetched: Fetched, ctx: BuildContext, name: str) -> Path:
    """Unpack ``fetched`` safely into the scratch folder ``name`` of the output folder."""
    root = ctx.scratch(name)
    extract_archive(fetched.path, root, max_total_bytes=ctx.limits.max_total_bytes,
                    max_members=ctx.limits.max_members, max_ratio=ctx.limits.max_ratio)
    return root


def single_sha256(entry: DatasetEntry, ctx: BuildContext) -> str:
    """data.sha256 pins one archive: refuse it for entries made of several files."""
    if ctx.cfg.sha256 and len(entry.files) != 1:
        raise ConfigError(f"data.sha256: pins one archive, but {entry.name} is made of "
                          f"{len(entry.files)} files; leave it empty")
    return ctx.cfg.sha256


__all__ = ["BuildContext", "Built", "fetch_remote"]
