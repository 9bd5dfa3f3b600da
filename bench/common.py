"""What every benchmark here shares: thread settings, JSON lines, timing, this machine's peak.

Each measurement is one JSON object on one line (``emit``), so a run can be kept, diffed and
turned into the table of ``bench/RESULTS.md`` (``bench/run.py``). Timings are medians after
warm-up; where two implementations are compared they run interleaved in the same process, so a
busy machine slows both alike and the ratio stays meaningful when the absolute numbers do not.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RECORDS: list[dict] = []


def set_threads(threads: int = 0) -> int:
    """Intra-op threads = ``threads`` (0: one per core); one inter-op thread (our graphs are
    sequential, and a second pool only competes for the same cores). Returns the count."""
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return torch.get_num_threads()


def machine() -> dict:
    """What a number was measured on."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": sys.version.split()[0], "load_1min": load,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def emit(record: dict) -> dict:
    """Print ``record`` as one JSON line and keep it for the table."""
    record = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.items()}
    RECORDS.append(record)
    print(json.dumps(record), flush=True)
    return record


def sync(device: torch.device | str = "cpu") -> None:
    """Wait for queued GPU work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1,
                device: torch.device | str = "cpu") -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                      device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Seconds of each of ``fns`` per call, called in turn (a, b, a, b, ...) after warm-up."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - started)
    return times


def measure_peak(quick: bool = False, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> dict:
    """This machine's attainable FLOP/s: the best of a 2048² matmul (8192² on a GPU) and 3×3
    convolutions with 64, 128 and 256 channels at 32-128 px (batch 1, forward), each a median
    of a few calls, in ``dtype`` (and with TF32 as the caller set it).

    The MFU of every benchmark divides by ``peak_gflops`` measured in the same run.
    """
    device = torch.device(device)
    repeats = 3 if quick else 7
    results = {}
    # A GPU needs a larger product to reach its peak: 8192² there (2048² would be launch-bound).
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = median_time(lambda: a @ b, repeats, warmup=2, device=device)
    results[f"matmul_{n}"] = 2 * n**3 / seconds / 1e9
    shapes = [(64, 64), (128, 64), (256, 32)] if quick else [
        (c, px) for c in (64, 128, 256) for px in (32, 64, 128)]
    with torch.no_grad():
        for channels, px in shapes:
            conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, dtype)
            x = torch.randn(1, channels, px, px, device=device, dtype=dtype)
            seconds = median_time(lambda conv=conv, x=x: conv(x), repeats, warmup=2,
                                  device=device)
            results[f"conv3x3_c{channels}_{px}px"] = 2 * channels * channels * 9 * px * px \
                / seconds / 1e9
    best = max(results, key=results.get)
    return {"peak_gflops": results[best], "peak_source": best,
            **{k: round(v, 1) for k, v in results.items()}}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (forward and backward) by ``torch.utils.flop_counter``:
    matmuls and convolutions only, the usual MFU convention."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
