"""Run a stage script until its first real work, then print the wall-clock time and stop.

    python bench/stage_probe.py cyclelab.training.loop:fit pipeline/train.py --variant baseline

``MODULE:FUNCTION`` is the library call a stage makes once its start-up is over (imports,
validation, seeding, loading inputs, opening the MLflow run). The probe replaces it, runs the
script as ``__main__``, and at that call prints ``PROBE <time.time()>`` and exits at once, so
nothing is written. ``bench/bench_pipeline.py`` subtracts its own launch time.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys
import time


def main() -> None:  # noqa: D103
    target, script, *args = sys.argv[1:]
    module_name, attr = target.split(":")
    module = importlib.import_module(module_name)

    def first_work(*_args, **_kwargs):
        print(f"PROBE {time.time():.6f}", flush=True)
        os._exit(0)

    setattr(module, attr, first_work)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
    print("PROBE never reached", flush=True)


if __name__ == "__main__":
    main()
