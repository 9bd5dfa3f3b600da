"""Stage download: data.dataset (or data.source) -> data/raw/{trainA,trainB,testA,testB}/ as
delivered, plus data/raw/SOURCE.json (URLs, sha256 and bytes of every archive, file counts).

Archives are kept in .cache/downloads/ (outside data/raw, git-ignored), so a rerun does not
download again and an interrupted download resumes. CYCLELAB_MIRROR replaces the catalogue's
base URL.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cyclelab.config import Config
from cyclelab.data.download import default_cache_dir, download_dataset
from cyclelab.stage import run_stage

RAW_DIR = Path("data/raw")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where downloads are kept (default: <repo>/.cache/downloads)")


def main(cfg: Config, args: argparse.Namespace) -> None:
    record = download_dataset(cfg.data, RAW_DIR, seed=cfg.seed,
                              cache_dir=args.cache_dir or default_cache_dir())
    counts = ", ".join(f"{split} {n}" for split, n in record["splits"].items())
    print(f"download: {record['dataset']} -> {RAW_DIR}: {counts} ({record['files']} files)")


if __name__ == "__main__":
    raise SystemExit(run_stage("download", main, __doc__, add_arguments))
