"""Kaggle datasets through the official client (a token of the user's), cached like downloads."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

from cyclelab.catalogue import DatasetEntry
from cyclelab.data.fetch import Fetched
from cyclelab.data.sources.context import BuildContext, Built, extract_to_scratch, first_line
from cyclelab.data.sources.layouts import split_two_folders, unpack_and_arrange
from cyclelab.errors import DataError
from cyclelab.io import sha256_file


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
        raise DataError(f"kaggle: authentication failed ({first_line(exc)}); check "
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
            raise DataError(f"kaggle: cannot download {slug} ({first_line(exc)}); check the "
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
        return Built(fetched, unpack_and_arrange(fetched[0], ctx, entry.layout))
    roots = [extract_to_scratch(item, ctx, f"extract{domain}")
             for item, domain in zip(fetched, "AB", strict=True)]
    details = split_two_folders(roots[0], roots[1], ctx, move=True)
    details["domains"] = dict(zip("AB", entry.kaggle, strict=True))
    for root in roots:
        shutil.rmtree(root)
    return Built(fetched, details)


__all__ = ["kaggle_api", "kaggle_download", "build_kaggle"]
