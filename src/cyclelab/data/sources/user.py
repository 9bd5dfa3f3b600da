"""``data.source`` (which overrides the catalogue): the user's folder, archive, http(s) URL or
``kaggle:owner/name``, arranged by the ``auto`` layout."""

from __future__ import annotations

from collections.abc import Callable

from cyclelab.data.fetch import fetch, is_url, local_path
from cyclelab.data.sources.context import BuildContext, Built
from cyclelab.data.sources.kaggle import kaggle_api, kaggle_download
from cyclelab.data.sources.layouts import arrange_auto, unpack_and_arrange
from cyclelab.errors import ConfigError, DataError


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
    return Built([fetched], unpack_and_arrange(fetched, ctx, "auto"))


def _from_archive(source: str, ctx: BuildContext) -> Built:
    fetched = fetch(source, ctx.cache_dir, sha256=ctx.cfg.sha256)
    return Built([fetched], unpack_and_arrange(fetched, ctx, "auto"))


def _from_folder(source: str, ctx: BuildContext) -> Built:
    if ctx.cfg.sha256:
        raise ConfigError("data.sha256: pins an archive, but data.source is a folder; leave it "
                          "empty")
    folder = local_path(source).resolve()
    return Built([], {**arrange_auto(folder, ctx, move=False), "folder": str(folder)})


def _from_kaggle(source: str, ctx: BuildContext) -> Built:
    fetched = kaggle_download(kaggle_api(), source.removeprefix("kaggle:"), ctx.cache_dir)
    return Built([fetched], unpack_and_arrange(fetched, ctx, "auto"))


SOURCE_KINDS: dict[str, Callable[[str, BuildContext], Built]] = {
    "url": _from_url,
    "archive": _from_archive,
    "folder": _from_folder,
    "kaggle": _from_kaggle,
}


def build_from_source(source: str, ctx: BuildContext) -> Built:
    """Build from ``data.source`` (which overrides the catalogue)."""
    return SOURCE_KINDS[source_kind(source)](source, ctx)


__all__ = ["SOURCE_KINDS", "source_kind", "build_from_source"]
