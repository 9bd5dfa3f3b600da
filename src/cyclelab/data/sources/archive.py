"""The official CycleGAN zips: fetch, verify, extract safely, arrange by the entry's layout."""

from __future__ import annotations

from cyclelab.catalogue import DatasetEntry
from cyclelab.data.sources.context import BuildContext, Built, fetch_remote, single_sha256
from cyclelab.data.sources.layouts import unpack_and_arrange


def _hint_archive(name: str) -> str:
    return (f"download {name} yourself and set data.source to the file, or set CYCLELAB_MIRROR "
            f"to a folder or URL that holds {name}")


def build_archive(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """An official CycleGAN zip: fetch, verify, extract safely, arrange by ``entry.layout``."""
    remote = entry.files[0]
    fetched = fetch_remote(remote, ctx, sha256=single_sha256(entry, ctx),
                           hint=_hint_archive(remote.name))
    return Built([fetched], unpack_and_arrange(fetched, ctx, entry.layout))


__all__ = ["build_archive"]
