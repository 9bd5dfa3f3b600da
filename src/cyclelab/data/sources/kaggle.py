"""Kaggle datasets through the official client (a token of the user's), cached like downloads,
and the selections some of them need before their images are split (:data:`SELECTIONS`)."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cyclelab.catalogue import DatasetEntry
from cyclelab.config import SpritesConfig
from cyclelab.data.extract import IMAGE_SUFFIXES
from cyclelab.data.fetch import Fetched
from cyclelab.data.sources.context import BuildContext, Built, extract_to_scratch, first_line
from cyclelab.data.sources.layouts import split_two_folders, unpack_and_arrange
from cyclelab.errors import DataError
from cyclelab.io import sha256_file

SPRITE_VIEWS = ("front", "back")
SPRITE_PALETTES = ("normal", "shiny")


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


def select_pokemon_sprites(root: Path, ctx: BuildContext) -> dict[str, Any]:
    """Keep the sprites ``data.sprites`` names in an unpacked ``yehongjiang/pokemon-sprites-images``
    and delete the other files (seeds/004 task 2 kept "the normal and front-facing versions",
    each Pokemon "at most represented 6 times").

    That archive holds ``pokemon_images/sprites/<NNNN>-<name>-<dex>/<view>/<palette>/*.png``
    (view ``front`` or ``back``, palette ``normal`` or ``shiny``) beside
    ``pokemon_images/pokedex.csv``, as the dataset author's notebook (PokeTypeGAN) reads it. A
    Pokemon is one folder above ``<view>/``; with ``max_per_pokemon`` its sprites are a seeded
    choice per Pokemon (the seed and its folder name: other Pokemon do not change it).
    """
    cfg: SpritesConfig = ctx.cfg.sprites
    files = sorted(p for p in root.rglob("*") if p.is_file())
    by_pokemon: dict[tuple[str, ...], list[Path]] = {}
    recognised = 0
    for path in files:
        parts = path.relative_to(root).parts
        if (len(parts) < 4 or parts[-3] not in SPRITE_VIEWS or parts[-2] not in SPRITE_PALETTES
                or path.suffix.lower() not in IMAGE_SUFFIXES):
            continue
        recognised += 1
        if parts[-3] in cfg.views and parts[-2] in cfg.palettes:
            by_pokemon.setdefault(parts[:-3], []).append(path)
    if not recognised:
        raise DataError(f"{root}: data.sprites expects sprite images in <pokemon>/<view>/"
                        f"<palette>/ folders (views {', '.join(SPRITE_VIEWS)}, palettes "
                        f"{', '.join(SPRITE_PALETTES)}); found none: set data.sprites to its "
                        "defaults for another dataset")
    kept: set[Path] = set()
    for pokemon, sprites in by_pokemon.items():
        if cfg.max_per_pokemon and len(sprites) > cfg.max_per_pokemon:
            sprites = random.Random(f"{ctx.seed}:{pokemon[-1]}").sample(sprites,
                                                                        cfg.max_per_pokemon)
        kept.update(sprites)
    for path in files:
        if path not in kept:
            path.unlink()
    return {"views": list(cfg.views), "palettes": list(cfg.palettes),
            "max_per_pokemon": cfg.max_per_pokemon, "pokemon": len(by_pokemon),
            "kept": len(kept), "dropped": len(files) - len(kept)}


# Kaggle dataset -> what to keep of it, applied when data.sprites is not its default (keep all).
SELECTIONS: dict[str, Callable[[Path, BuildContext], dict[str, Any]]] = {
    "yehongjiang/pokemon-sprites-images": select_pokemon_sprites,
}


def _by_hand(entry: DatasetEntry) -> str:
    """What fetching ``entry`` without the client takes, for the error that says it cannot."""
    pages = " and ".join(f"https://www.kaggle.com/datasets/{slug}" for slug in entry.kaggle)
    if len(entry.kaggle) == 1:
        return (f"or download {entry.name} from {pages} yourself and set data.source to the zip "
                "(or its unzipped folder)")
    return (f"{entry.name} needs the client: it fetches {pages} and selects from their layout "
            "(data.sprites) before the split")


def build_kaggle(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """One Kaggle dataset in the four-split layout, or two (domain A, domain B) to split."""
    try:
        api = kaggle_api()
    except DataError as exc:
        raise DataError(f"{exc}; {_by_hand(entry)}") from None
    fetched = [kaggle_download(api, slug, ctx.cache_dir) for slug in entry.kaggle]
    if len(fetched) == 1:
        return Built(fetched, unpack_and_arrange(fetched[0], ctx, entry.layout))
    roots = [extract_to_scratch(item, ctx, f"extract{domain}")
             for item, domain in zip(fetched, "AB", strict=True)]
    selected = {}
    if ctx.cfg.sprites != SpritesConfig():
        selected = {domain: SELECTIONS[slug](root, ctx)
                    for domain, slug, root in zip("AB", entry.kaggle, roots, strict=True)
                    if slug in SELECTIONS}
    details = split_two_folders(roots[0], roots[1], ctx, move=True)
    details["domains"] = dict(zip("AB", entry.kaggle, strict=True))
    if selected:
        details["selected"] = selected
    for root in roots:
        shutil.rmtree(root)
    return Built(fetched, details)


__all__ = ["SELECTIONS", "kaggle_api", "kaggle_download", "select_pokemon_sprites", "build_kaggle"]
