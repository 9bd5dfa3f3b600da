"""Throughput of FID feature extraction, in images/s, on random uint8 images.

    .venv/bin/python bench/bench_fid.py --images 32 --size 32 --batch-size 25 --device cpu

ARCHITECTURE.md quotes about 7.5 images/s on 2 CPU cores. Not run by the tests.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cyclelab.metrics.inception import extract_features, load_inception


def main(argv: list[str] | None = None) -> None:
    """Parse the options, time :func:`extract_features`, print the throughput."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32, help="images timed (default 32)")
    parser.add_argument("--size", type=int, default=32, help="image side in px (default 32)")
    parser.add_argument("--batch-size", type=int, default=25, help="(default 25)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    net = load_inception(device=args.device)
    load_seconds = time.perf_counter() - start
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, args.size, args.size, 3), dtype=np.uint8)
    # Warm-up: TorchScript profiles and optimises the graph on its first calls.
    extract_features(net, images[:2], batch_size=args.batch_size, progress=False)

    start = time.perf_counter()
    extract_features(net, images, batch_size=args.batch_size, progress=False)
    seconds = time.perf_counter() - start  # features come back on the CPU: the device is synced
    print(f"{args.images / seconds:.2f} images/s  ({args.images} images of {args.size} px, "
          f"batch {args.batch_size}, {args.device}, {torch.get_num_threads()} threads; "
          f"verify + load {load_seconds:.1f} s)")


if __name__ == "__main__":
    main()
