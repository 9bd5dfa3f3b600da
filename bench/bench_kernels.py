"""How far the training step's MFU can go with torch's own convolution kernels on this machine.

Records every convolution (forward and backward) of one step of ours, replays each one alone
on fresh tensors of the same shapes (median of a few calls, after warm-up) and adds their
times. That sum is what the step would take if everything else (instance norm, padding,
activations, losses, Adam, Python) cost nothing and every convolution ran as fast as it does
alone: its MFU, FLOPs of the step ÷ that sum ÷ the peak, is a ceiling for any step built on
these kernels. A target above it needs faster convolution kernels, not a better step.

    .venv/bin/python bench/bench_kernels.py [--configs r6_32 seed000_32] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_train_step import CONFIGS, build_pair, study_config  # noqa: E402
from bench.common import count_flops, emit, interleaved_times, measure_peak, set_threads  # noqa: E402

CONVOLUTIONS = (torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default)
QUICK = ["r6_32"]
FULL = ["seed000_32", "r6_32", "r6_64", "r9_256"]


def _spec(value):
    """A hashable description of an op argument: tensors by shape and dtype."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype)
    if isinstance(value, list | tuple):
        return tuple(_spec(v) for v in value)
    return value


def _build(spec):
    if isinstance(spec, tuple) and spec and spec[0] == "tensor":
        return torch.randn(spec[1], dtype=spec[2])
    if isinstance(spec, tuple):
        return [_build(s) for s in spec]
    return spec


class ConvRecorder(TorchDispatchMode):
    """Counts the convolution calls (op and argument shapes) made under it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: D105
        if func in CONVOLUTIONS:
            self.calls[(func, _spec(args))] += 1
        return func(*args, **(kwargs or {}))


def replay_seconds(func, spec, repeats: int = 7, warmup: int = 2) -> float:
    """Median seconds of one convolution call alone, on fresh tensors of the recorded shapes."""
    args = _build(spec)
    for _ in range(warmup):
        func(*args)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_config(name: str, peak_gflops: float, repeats: int = 7) -> dict:
    """Step time, convolution time alone and the MFU ceiling of config ``name``."""
    cfg = study_config() if name == "study" else CONFIGS[name]
    ours, _, batch = build_pair(cfg)
    step_s = statistics.median(interleaved_times({"ours": lambda: ours.step(batch)},
                                                 repeats=repeats, warmup=2)["ours"])
    flops = count_flops(lambda: ours.step(batch))
    recorder = ConvRecorder()
    with recorder:
        ours.step(batch)
    conv_s = sum(count * replay_seconds(func, spec)
                 for (func, spec), count in recorder.calls.items())
    return emit({
        "bench": "kernels", "config": cfg.name, "size": cfg.size, "batch": cfg.batch,
        "gflop_per_iter": flops / 1e9, "step_s": step_s, "conv_alone_s": conv_s,
        "conv_calls": sum(recorder.calls.values()), "conv_share": conv_s / step_s,
        "mfu": flops / step_s / 1e9 / peak_gflops,
        "mfu_ceiling": flops / conv_s / 1e9 / peak_gflops,
        "threads": torch.get_num_threads(), "note": cfg.note})


def run(full: bool = False, names: list[str] | None = None, peak: dict | None = None) -> list:
    """Every config of ``names`` (default: quick or full list)."""
    peak = peak or emit({"bench": "peak", **measure_peak(quick=not full)})
    return [bench_config(n, peak["peak_gflops"]) for n in names or (FULL if full else QUICK)]


def main(argv: list[str] | None = None) -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=[*CONFIGS, "study"])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    for r in run(args.full, args.configs):
        print(f"{r['config']}: step {r['step_s']:.3f} s, its {r['conv_calls']} convolutions "
              f"alone {r['conv_alone_s']:.3f} s ({100 * r['conv_share']:.0f} %); MFU "
              f"{100 * r['mfu']:.0f} %, ceiling with these kernels {100 * r['mfu_ceiling']:.0f} %")


if __name__ == "__main__":
    main()
