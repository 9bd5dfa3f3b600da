"""FID feature extraction, images/s: ours against clean-fid on the same PNG folder, same network.

    .venv/bin/python bench/bench_fid.py [--sizes 32 256] [--images 24] [--threads 2]

Ours: the evaluate stage's path, ``load_folder`` + :func:`cyclelab.metrics.extract_features`.
clean-fid: ``cleanfid.fid.get_folder_features(mode="legacy_tensorflow")`` (it leaves the images
at their size, as NVIDIA's network resizes inside) with ``custom_feat_extractor``-style
``model=``: the plain TorchScript network behind our TF1 resize, so both compute the same
features (the record's ``max_feature_diff`` says how close) and only the way they run differs.
Both run with the same batch size and threads, in turn, in the same process (clean-fid with
``num_workers=0``: on 2 cores, loader processes only compete with the network). Model loading
is excluded from both. When clean-fid is not installed the comparison record says so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, interleaved_times, set_threads  # noqa: E402
from cyclelab.data.dataset import load_folder  # noqa: E402
from cyclelab.metrics.inception import extract_features, load_inception, preprocess  # noqa: E402


def write_images(folder: Path, count: int, size: int, seed: int = 0) -> None:
    """``count`` RGB PNGs: smooth colour ramps with noise (compress like photos, not noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = np.outer(ramp, ramp)[..., None] * rng.uniform(0, 255, 3) \
            + rng.normal(0, 12, (size, size, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.png")


def plain_network(path: Path):
    """The network exactly as shipped (no freezing or layout changes), behind our TF1 resize,
    taking clean-fid's float batches of uint8 values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path)).eval()

    def features(batch_0_255: torch.Tensor) -> torch.Tensor:
        # ToTensor()*255 can leave an integer a float ulp off: round back to the uint8 values.
        return module(preprocess(batch_0_255.round().to(torch.uint8))).reshape(len(batch_0_255),
                                                                             -1)
    return features


def bench_size(size: int, count: int, batch_size: int, repeats: int) -> list[dict]:
    """Ours and clean-fid on one folder of ``count`` images of ``size`` px."""
    net = load_inception(device="cpu")
    records = []
    with tempfile.TemporaryDirectory(prefix="bench_fid-") as tmp:
        folder = Path(tmp) / "images"
        write_images(folder, count, size)

        def ours() -> np.ndarray:
            return extract_features(net, load_folder(folder), batch_size=batch_size,
                                    progress=False)

        fns = {"ours": ours}
        try:
            from cleanfid import fid as cleanfid
        except ImportError:
            cleanfid = None
            skip = "clean-fid is not installed (.venv/bin/pip install clean-fid==0.1.35)"
        if cleanfid is not None:
            extractor = plain_network(net.path)

            def clean() -> np.ndarray:
                return cleanfid.get_folder_features(
                    str(folder), model=extractor, num_workers=0, batch_size=batch_size,
                    device=torch.device("cpu"), mode="legacy_tensorflow", verbose=False)

            fns["clean-fid"] = clean
        started = time.perf_counter()
        features = {name: fn() for name, fn in fns.items()}  # also the warm-up
        first_call = time.perf_counter() - started
        times = interleaved_times(fns, repeats=repeats, warmup=0)
    medians = {name: statistics.median(t) for name, t in times.items()}
    diff = (float(np.abs(features["ours"] - features["clean-fid"]).max())
            if "clean-fid" in features else None)
    for name, seconds in medians.items():
        record = {"bench": "fid_features", "impl": name, "size": size, "images": count,
                  "batch_size": batch_size, "images_per_s": count / seconds,
                  "s_per_image": seconds / count, "repeats": repeats,
                  "threads": torch.get_num_threads(), "first_calls_s": first_call}
        if "clean-fid" in medians:
            record["vs_clean_fid"] = medians["clean-fid"] / seconds
            record["max_feature_diff"] = diff
        records.append(emit(record))
    if "clean-fid" not in medians:
        records.append(emit({"bench": "fid_features", "impl": "clean-fid", "size": size,
                             "skipped": skip}))
    return records


def run(full: bool = False, sizes: list[int] | None = None, images: int = 0,
        batch_size: int = 25, repeats: int = 0) -> list[dict]:
    """The FID path at each size (quick: 32 px, few images; full: 32 and 256 px)."""
    sizes = sizes or ([32, 256] if full else [32])
    records = []
    for size in sizes:
        records += bench_size(size, images or (50 if full else 10), batch_size,
                              repeats or (3 if full else 2))
    return records


def main(argv: list[str] | None = None) -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="32 and 256 px, 50 images")
    parser.add_argument("--sizes", type=int, nargs="+", help="image sides in px")
    parser.add_argument("--images", type=int, default=0, help="images per folder")
    parser.add_argument("--batch-size", type=int, default=25, help="(default 25, eval's)")
    parser.add_argument("--repeats", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    run(args.full, args.sizes, args.images, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
