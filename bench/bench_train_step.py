"""One CycleGAN training step: s/iteration, images/s, FLOPs, MFU, and the ratio against the plain
reference step (``bench/reference_step.py``), both on the same networks, interleaved.

    .venv/bin/python bench/bench_train_step.py [--full] [--configs r6_32 ...] [--threads 2]
    python3 bench/bench_train_step.py --device cuda --precision bf16 --configs r6_32 r9_256

FLOPs per iteration come from ``torch.utils.flop_counter`` over one reference step (the
algorithm's FLOPs: matmuls and convolutions, forward and backward); MFU is achieved FLOP/s over
this machine's peak, measured in the same run (:func:`common.measure_peak`). An image here is
one A/B pair (what one step consumes per batch element).

On a GPU (``--device cuda``) ``--precision`` picks fp32 (TF32 off), tf32 (TF32 matmuls and
convolutions) or bf16 (autocast) for our step and for the peak (an 8192² matmul in the same
mode); the reference step stays plain fp32 as the official code runs, TF32 as set.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    RECORDS,
    count_flops,
    emit,
    interleaved_times,
    machine,
    measure_peak,
    set_threads,
)
from bench.reference_step import ReferenceCycleGAN  # noqa: E402
from cyclelab import config  # noqa: E402
from cyclelab.models.build import build_discriminator, build_generator  # noqa: E402
from cyclelab.runtime import make_runtime  # noqa: E402
from cyclelab.training.cyclegan import CycleGAN  # noqa: E402
from cyclelab.training.pool import ImagePool  # noqa: E402


@dataclass(frozen=True)
class StepConfig:
    """One benchmarked configuration (networks as in the CycleGAN paper: ndf 64, PatchGAN)."""

    name: str
    size: int
    ngf: int = 64
    n_blocks: int = 9
    batch: int = 1
    ndf: int = 64
    note: str = ""


CONFIGS = {c.name: c for c in [
    StepConfig("seed000_32", 32, 64, 3, 1, note="seed 000: 32 px, ngf 64, 3 blocks"),
    StepConfig("r6_32", 32, 64, 6, 1, note="resnet_6blocks"),
    StepConfig("r6_64", 64, 64, 6, 1, note="resnet_6blocks"),
    StepConfig("r9_128", 128, 64, 9, 1, note="resnet_9blocks"),
    StepConfig("r9_256", 256, 64, 9, 1, note="resnet_9blocks, the paper's setting"),
    StepConfig("r6_32_b8", 32, 64, 6, 8, note="resnet_6blocks, batch 8"),
    # Plumbing checks only (gpu_check.sh --dry-run), not a study setting.
    StepConfig("tiny_32", 32, 8, 1, 1, ndf=8, note="tiny: dry runs"),
]}
PRECISIONS = ("fp32", "tf32", "bf16")
QUICK = ["seed000_32", "r6_32", "study"]


def study_config(params: str | Path = "params.yaml") -> StepConfig:
    """The default study's networks and batch (``params.yaml``)."""
    cfg = config.load(params)
    return StepConfig("study", cfg.data.image_size, cfg.model.ngf, cfg.model.n_blocks,
                      cfg.train.batch_size, cfg.model.ndf,
                      note=f"params.yaml: ngf {cfg.model.ngf}, {cfg.model.n_blocks} blocks, "
                           f"ndf {cfg.model.ndf}, batch {cfg.train.batch_size}")


def set_precision(precision: str) -> str:
    """TF32 on for ``tf32`` only; the runtime's precision for our step."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return "bf16" if precision == "bf16" else "fp32"


def build_pair(cfg: StepConfig, device: str = "cpu", seed: int = 0, precision: str = "fp32"):
    """Ours and the reference step over identical copies of the same fresh networks and pools,
    plus one fixed batch of images in [-1, 1]."""
    model_cfg = config.ModelConfig(ngf=cfg.ngf, ndf=cfg.ndf, n_blocks=cfg.n_blocks)
    train_cfg = config.TrainConfig(batch_size=cfg.batch)
    torch.manual_seed(seed)
    nets = [build_generator(model_cfg), build_generator(model_cfg),
            build_discriminator(model_cfg), build_discriminator(model_cfg)]
    runtime = make_runtime(device, set_precision(precision))
    ours = CycleGAN(*copy.deepcopy(nets), train_cfg, runtime, seed=seed)
    reference = ReferenceCycleGAN(*copy.deepcopy(nets), train_cfg, ImagePool(50, seed=seed + 1),
                                  ImagePool(50, seed=seed + 2), device=device)
    gen = torch.Generator().manual_seed(seed)
    batch = tuple(torch.rand(cfg.batch, 3, cfg.size, cfg.size, generator=gen) * 2 - 1
                  for _ in range(2))
    return ours, reference, batch


def bench_config(cfg: StepConfig, peak_gflops: float, repeats: int, warmup: int,
                 device: str = "cpu", precision: str = "fp32") -> list[dict]:
    """Time ours against the reference on ``cfg``; one record per implementation."""
    ours, reference, batch = build_pair(cfg, device, precision=precision)
    flops = count_flops(lambda: reference.step(batch))
    times = interleaved_times({"ours": lambda: ours.step(batch),
                               "reference": lambda: reference.step(batch)},
                              repeats=repeats, warmup=warmup, device=device)
    medians = {name: statistics.median(t) for name, t in times.items()}
    records = []
    for impl, seconds in medians.items():
        gflops = flops / seconds / 1e9
        records.append(emit({
            "bench": "train_step", "config": cfg.name, "impl": impl, "size": cfg.size,
            "ngf": cfg.ngf, "n_blocks": cfg.n_blocks, "batch": cfg.batch,
            "s_per_iter": seconds, "images_per_s": cfg.batch / seconds,
            "gflop_per_iter": flops / 1e9, "gflops": gflops,
            "mfu": gflops / peak_gflops, "vs_reference": medians["reference"] / seconds,
            "repeats": repeats, "spread": (max(times[impl]) - min(times[impl])) / seconds,
            "threads": torch.get_num_threads(), "device": device, "mode": precision,
            "precision": precision if impl == "ours" else "fp32" + "/tf32" * (
                precision == "tf32"), "note": cfg.note}))
    return records


def select(names: list[str] | None, full: bool) -> list[StepConfig]:
    """The configs to run: named ones, or all (``full``), or the quick set."""
    names = names or ([*(n for n in CONFIGS if not n.startswith("tiny")), "study"] if full
                      else QUICK)
    unknown = [n for n in names if n != "study" and n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; known: {[*CONFIGS, 'study']}")
    return [study_config() if n == "study" else CONFIGS[n] for n in names]


def run(full: bool = False, names: list[str] | None = None, repeats: int = 0,
        peak: dict | None = None, device: str = "cpu", precision: str = "fp32") -> list[dict]:
    """Measure the peak (unless given) and every selected config."""
    if peak is None:
        set_precision(precision)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        peak = emit({"bench": "peak", "device": device, "precision": precision,
                     **measure_peak(quick=not full, device=device, dtype=dtype), **machine()})
    records = []
    for cfg in select(names, full):
        big = cfg.size >= 128 and device == "cpu"
        n = repeats or (3 if big or not full else 5)
        records += bench_config(cfg, peak["peak_gflops"], repeats=n, warmup=1 if big else 2,
                                device=device, precision=precision)
    return records


def main(argv: list[str] | None = None) -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="every config (default: quick set)")
    parser.add_argument("--configs", nargs="+", help=f"any of {[*CONFIGS, 'study']}")
    parser.add_argument("--repeats", type=int, default=0, help="timed steps (default 3 or 5)")
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="our step's (and the peak's) precision on a GPU")
    parser.add_argument("--jsonl", help="append the records to this file")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    records = run(args.full, args.configs, args.repeats, device=args.device,
                  precision=args.precision)
    if args.jsonl:
        with open(args.jsonl, "a") as out:
            out.writelines(json.dumps(r) + "\n" for r in [*RECORDS[:1], *records])


if __name__ == "__main__":
    main()

