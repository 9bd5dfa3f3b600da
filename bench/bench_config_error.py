"""Time from launching each stage script with a typo'd params key to its one-line error.

    .venv/bin/python bench/bench_config_error.py

The brief's target: under 5 s. Validation runs before torch, MLflow or data are imported."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = {"download": [], "prepare": [], "reference": [], "pretrain_ae": ["--domain", "A"],
          "train": ["--variant", "baseline"], "evaluate": ["--variant", "baseline"],
          "report": []}


def main() -> None:  # noqa: D103
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["lamda_cycle"] = params["train"].pop("lambda_cycle")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        for stage, extra in STAGES.items():
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, str(REPO / "pipeline" / f"{stage}.py"),
                                   "--params", str(path), *extra], capture_output=True,
                                  text=True, cwd=tmp)
            seconds = time.perf_counter() - started
            lines = proc.stderr.strip().splitlines()
            print(f"{stage:12s} exit {proc.returncode}  {seconds:.2f} s  {len(lines)} line(s): "
                  f"{lines[0][:70] if lines else ''}")


if __name__ == "__main__":
    main()
