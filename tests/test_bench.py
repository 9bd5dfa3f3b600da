"""The benchmark suite's own plumbing (not its timings): FLOP counting, the results table and
its block in RESULTS.md, and ``bench/gpu_check.sh --dry-run`` on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from bench.common import count_flops
from bench.run import BEGIN, END, table, write_results

REPO = Path(__file__).resolve().parents[1]


def test_flops_of_a_convolution_forward_and_backward():
    conv = torch.nn.Conv2d(4, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    forward = 2 * 2 * 4 * 8 * 9 * 16 * 16
    assert count_flops(lambda: conv(x)) == forward
    # Backward: the gradient of the input and of the weight, each as costly as the forward.
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * forward


def _records() -> list[dict]:
    peak = {"bench": "peak", "device": "cpu", "precision": "fp32", "peak_gflops": 100.0,
            "peak_source": "matmul_2048", "cpu": "test cpu", "cores": 2, "threads": 2,
            "torch": "x", "date": "today", "load_1min": 0.5}
    step = {"bench": "train_step", "config": "r6_32", "size": 32, "batch": 1, "device": "cpu",
            "mode": "fp32", "gflop_per_iter": 20.0}
    return [peak,
            {**step, "impl": "ours", "s_per_iter": 0.25, "images_per_s": 4.0, "mfu": 0.8,
             "vs_reference": 2.5},
            {**step, "impl": "reference", "s_per_iter": 0.625, "images_per_s": 1.6, "mfu": 0.32,
             "vs_reference": 1.0},
            {"bench": "fid_features", "impl": "ours", "size": 32, "images": 10,
             "images_per_s": 12.0, "vs_clean_fid": 1.1, "max_feature_diff": 1e-6},
            {"bench": "fid_features", "impl": "clean-fid", "size": 32, "images": 10,
             "images_per_s": 10.9, "vs_clean_fid": 1.0, "max_feature_diff": 1e-6},
            {"bench": "pipeline", "what": "dvc_repro_noop", "seconds": 4.0, "target_s": 5.0}]


def test_table_states_each_target():
    text = table(_records())
    assert "**100.0 GFLOP/s**" in text
    row = next(line for line in text.splitlines() if line.startswith("| r6_32"))
    assert "| 0.250 |" in row and "| 80 % |" in row and "2.50×" in row
    assert "MFU ≥ 70 %: met" in row and "≥ 2× reference: met" in row
    fid = next(line for line in text.splitlines() if "| 1.10× |" in line)
    assert "missed (0.92× of target)" in fid
    assert "| no-op dvc repro | 4.00 | ≤ 5 s: met |" in text


def test_results_block_is_replaced_and_notes_kept(tmp_path):
    path = tmp_path / "RESULTS.md"
    write_results("first table", path)
    path.write_text(path.read_text() + "\nNotes written by hand.\n")
    write_results("second table", path)
    text = path.read_text()
    assert text.count(BEGIN) == text.count(END) == 1
    assert "second table" in text and "first table" not in text
    assert "Notes written by hand." in text


def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "THREADS": "1"}
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--dry-run"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "needs a CUDA GPU" in (tmp_path / "cuda_tests.log").read_text()
    jsonl = (tmp_path / "gpu_bench.jsonl").read_text()
    assert '"impl": "ours"' in jsonl and '"impl": "reference"' in jsonl
    table_md = (tmp_path / "bench_gpu.md").read_text()
    assert "| tiny_32 | 32 | 1 | cpu, fp32 |" in table_md


def test_kernel_ceiling_records_every_convolution_and_replays_it():
    from bench.bench_kernels import ConvRecorder, replay_seconds

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    x = torch.randn(2, 3, 8, 8)
    recorder = ConvRecorder()
    with recorder:
        net(x).sum().backward()
        net(x).sum().backward()
    ops = [func.__name__ for func, _ in recorder.calls.elements()]
    # Two passes of two convolutions, each forward and backward.
    assert sorted(ops) == ["convolution.default"] * 4 + ["convolution_backward.default"] * 4
    assert len(recorder.calls) == 4 and set(recorder.calls.values()) == {2}
    for func, spec in recorder.calls:
        assert replay_seconds(func, spec, repeats=1, warmup=0) > 0


def test_table_states_the_kernel_ceiling():
    record = {"bench": "kernels", "config": "r6_32", "size": 32, "batch": 1, "step_s": 0.12,
              "conv_alone_s": 0.08, "conv_share": 0.67, "mfu": 0.37, "mfu_ceiling": 0.56}
    row = next(line for line in table([record]).splitlines() if line.startswith("| r6_32"))
    assert "| 56 % |" in row and "≥ 70 %: above the ceiling by 14 %" in row
