"""Throughput of the prepare stage, in images/s, on apple2orange with 1 and 2 worker processes.

    .venv/bin/python bench/bench_prepare.py --size 32 --workers 1 2 --repeats 2

Extracts the archive once into a temporary folder, then times ``prepare_dataset`` for each
worker count (pool start-up included: it is part of what a user waits for). Not run by the
tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import zipfile
from pathlib import Path

from cyclelab.config import DataConfig
from cyclelab.data.prepare import prepare_dataset

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "apple2orange.zip"


def main(argv: list[str] | None = None) -> None:
    """Parse the options, time :func:`prepare_dataset` per worker count, print images/s."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=ARCHIVE,
                        help="zip holding <name>/{trainA,trainB,testA,testB} (default %(default)s)")
    parser.add_argument("--size", type=int, default=32, help="data.image_size (default 32)")
    parser.add_argument("--resize", default="resize", help="data.resize (default resize)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to time (default 1 2)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per count; best is kept")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_prepare-") as tmp:
        with zipfile.ZipFile(args.archive) as archive:
            archive.extractall(tmp)
        raw = next(path for path in Path(tmp).iterdir() if (path / "trainA").is_dir())
        base = DataConfig(image_size=args.size, resize=args.resize)
        for workers in args.workers:
            cfg = dataclasses.replace(base, workers=workers)
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                summary = prepare_dataset(raw, Path(tmp) / "prepared", cfg, progress=False)
                best = min(best, time.perf_counter() - start)
            n = sum(summary["inputs"].values())
            print(f"workers={workers}: {n / best:7.1f} images/s  ({n} files in {best:.2f} s, "
                  f"{args.size} px, {args.resize}; best of {args.repeats})")


if __name__ == "__main__":
    main()
