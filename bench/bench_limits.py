"""Time limits the unit tests used to assert, measured here instead (a test keeps the behaviour:
the flag, the one line, the reason, and at most a generous guard against a hang).

    .venv/bin/python -m bench.bench_limits

- ``classifier_fit``: the digits classifier of tests/test_semantic.py (240 training images,
  its FAST settings) trained by ``fit_domain``; target 30 s (about 3 s alone on 2 cores).
- ``silent_server``: ``tracking.check_store`` against a port that accepts and never answers
  (the probe's timeout is ``tracking.PROBE_TIMEOUT_S``); target 15 s.
- ``refused_server_stage``: the download stage script against a closed port, from launch to
  its one-line error; target 15 s.
- ``huge_png_prepare``: prepare on a PNG that claims 10^10 pixels (refused from its header)
  beside one good image per split; target 10 s.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _timed(what: str, target_s: float, work: Callable[[], object]) -> dict:
    from bench.common import emit

    start = time.perf_counter()
    work()
    return emit({"bench": "limit", "what": what, "seconds": time.perf_counter() - start,
                 "target_s": target_s})


def classifier_fit(root: Path) -> None:
    """tests/test_semantic.py's digits_prepared classifier, trained once."""
    import numpy as np

    from cyclelab.data.digits import render_digit
    from cyclelab.training.classifier import fit_domain
    from tests.test_semantic import FAST, RUNTIME, SIZE, save_png, write_labels

    prepared, labels, rng = root / "prepared", {}, np.random.default_rng(0)
    for folder, count in (("trainB", 240), ("testB", 60)):
        for index in range(count):
            img, digit = render_digit(rng, "A", SIZE)
            save_png(prepared / folder / f"{index:05d}.png", np.asarray(img))
            labels[f"{folder}/{index:05d}.png"] = digit
    write_labels(prepared, labels)
    _timed("classifier_fit", 30, lambda: fit_domain(prepared, "B", FAST, RUNTIME, seed=0))


def silent_server() -> None:
    """check_store against a server that never answers."""
    from cyclelab import tracking

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        tracking._probe.cache_clear()

        def check() -> None:
            try:
                tracking.check_store()
            except tracking.TrackingError:
                return
            raise RuntimeError("check_store accepted a silent server")

        try:
            _timed("silent_server", 15, check)
        finally:
            del os.environ["MLFLOW_TRACKING_URI"]


def refused_server_stage(root: Path) -> None:
    """The download stage script against a closed port."""
    import yaml

    from tests.conftest import TINY

    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(TINY, sort_keys=False))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    work = root / "work"
    work.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}

    def stage() -> None:
        proc = subprocess.run(
            [sys.executable, str(REPO / "pipeline/download.py"), "--params", str(params)],
            cwd=work, env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 2 or "unreachable" not in proc.stderr:
            raise RuntimeError(f"not the tracking error: exit {proc.returncode}, {proc.stderr}")

    _timed("refused_server_stage", 15, stage)


def huge_png_prepare(root: Path) -> None:
    """prepare with a 70-byte PNG that claims 100,000 x 100,000 pixels."""
    from cyclelab.data.prepare import prepare_dataset
    from tests.test_prepare import cfg, one_good_per_split, png_bytes, write_raw

    raw = write_raw(root / "raw", {
        "trainA/huge.png": png_bytes(100_000, 100_000, bytes(64), color_type=0),
        **one_good_per_split()})

    def prepare() -> None:
        summary = prepare_dataset(raw, root / "prepared", cfg(), progress=False)
        if summary["skipped"].get("too large") != 1:
            raise RuntimeError(f"the huge PNG was not refused: {summary}")

    _timed("huge_png_prepare", 10, prepare)


def run() -> None:
    """Every measurement above, each in its own temporary folder."""
    silent_server()
    for measure in (classifier_fit, refused_server_stage, huge_png_prepare):
        with tempfile.TemporaryDirectory(prefix="bench_limits-") as tmp:
            measure(Path(tmp))


if __name__ == "__main__":
    run()
