"""The pipeline around the networks: no-op ``dvc repro``, each stage's start-up until its first
real work, peak RSS of ``train`` at 256 px, and (``--study``) the default study's wall time by
stage. Everything runs in throw-away git copies of this checkout, never in it.

    .venv/bin/python bench/bench_pipeline.py [--study]

Start-up: from launching ``python pipeline/<stage>.py`` to the library call that starts its
work (``bench/stage_probe.py``), minus the median time of ``python -c "import torch"``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, emit  # noqa: E402

# The library call each stage script makes once its start-up is over (see stage_probe.py).
PROBES = {
    "download": "cyclelab.data.download:download_dataset",
    "prepare": "cyclelab.data.prepare:prepare_dataset",
    "reference": "cyclelab.metrics:extract_features",
    "classifier": "cyclelab.training.classifier:fit_domain",
    "pretrain_ae": "cyclelab.training.loop:fit",
    "train": "cyclelab.training.loop:fit",
    "evaluate": "cyclelab.metrics.translation:translate",
    "compare": "cyclelab.report.aggregate:aggregate",
    "report": "cyclelab.report.build:build_report",
}
# Small enough to reproduce in a few minutes; the stage start-ups do not depend on it.
SMALL = {
    "data": {"digits": {"train_per_domain": 40, "test_per_domain": 10}},
    "ae": {"epochs": 1},
    "classifier": {"epochs": 1, "max_images": 40},
    "train": {"epochs": 1, "max_steps_per_epoch": 3, "num_samples": 2},
    "eval": {"max_images": 10, "kid_subset_size": 5, "kid_subsets": 2, "bootstrap": 10},
}


def _env() -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
    for key in ("MLFLOW_TRACKING_URI", "DVC_ROOT"):
        env.pop(key, None)
    return env


def sh(args: list[str], cwd: Path, timeout: int = 3600) -> float:
    """Run ``args`` in ``cwd``; seconds it took. Fails loudly (a benchmark of a failure lies)."""
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {cwd}:\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` applied key by key (nested mappings merged)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def make_repo(root: Path, overrides: dict) -> Path:
    """A git copy of this checkout's tracked and new files with ``overrides`` on params.yaml."""
    repo = root / "repo"
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        if (REPO / name).is_file() and not name.startswith(("data/", "reports/")):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    params = merge(yaml.safe_load((REPO / "params.yaml").read_text()), overrides)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "bench"], repo)
    return repo


def import_torch_seconds(repeats: int = 3) -> float:
    """Median wall time of ``python -c "import torch"``."""
    return statistics.median(sh([sys.executable, "-c", "import torch"], REPO)
                             for _ in range(repeats))


def stage_commands(repo: Path) -> dict[str, list[str]]:
    """One reproduced command per stage script (``dvc.lock``), e.g. ``train`` ->
    ``["pipeline/train.py", "--variant", "baseline", ...]``."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    commands: dict[str, list[str]] = {}
    for stage in lock["stages"].values():
        words = str(stage["cmd"]).split()
        script = next((w for w in words if w.startswith("pipeline/")), None)
        if script:
            commands.setdefault(Path(script).stem, words[words.index(script):])
    return commands


def stage_startup(repo: Path, target: str, command: list[str], repeats: int = 2) -> float:
    """Best wall time from launching ``command`` to its first call of ``target``."""
    best = float("inf")
    for _ in range(repeats):
        launched = time.time()
        proc = subprocess.run([sys.executable, str(REPO / "bench" / "stage_probe.py"), target,
                               *command], cwd=repo, env=_env(),
                              capture_output=True, text=True, timeout=600)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
        if not lines or lines[-1] == "PROBE never reached":
            raise RuntimeError(f"probe of {command} did not reach {target}:\n"
                               f"{proc.stderr[-2000:]}")
        best = min(best, float(lines[-1].split()[1]) - launched)
    return best


def stage_names(repo: Path) -> list[str]:
    """Every stage of dvc.yaml, in file order (which is the DAG's order here)."""
    out = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=repo, env=_env(),
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def bench_small_study(root: Path) -> list[dict]:
    """Reproduce a small study, then time the no-op rerun and each stage's start-up."""
    repo = make_repo(root / "small", SMALL)
    records = [emit({"bench": "pipeline", "what": "dvc_repro_small_study",
                     "seconds": sh(["dvc", "repro"], repo), "params": "bench_pipeline.SMALL"})]
    noop = [sh(["dvc", "repro"], repo) for _ in range(2)]
    records.append(emit({"bench": "pipeline", "what": "dvc_repro_noop",
                         "seconds": min(noop), "runs": [round(t, 2) for t in noop],
                         "target_s": 5.0}))
    torch_s = import_torch_seconds()
    records.append(emit({"bench": "pipeline", "what": "import_torch", "seconds": torch_s}))
    for stage, command in stage_commands(repo).items():
        if stage not in PROBES:
            records.append(emit({"bench": "pipeline", "what": "stage_startup", "stage": stage,
                                 "skipped": "no probe: add its first library call to PROBES"}))
            continue
        seconds = stage_startup(repo, PROBES[stage], command)
        records.append(emit({"bench": "pipeline", "what": "stage_startup", "stage": stage,
                             "command": " ".join(command), "seconds": seconds,
                             "beyond_import_torch_s": seconds - torch_s,
                             "target_beyond_s": 3.0}))
    return records


def bench_train_rss(root: Path, size: int = 256) -> dict:
    """Peak RSS of the train stage at ``size`` px (the study's networks, a few steps)."""
    repo = make_repo(root / f"rss{size}", merge(SMALL, {"data": {"image_size": size}}))
    sh(["dvc", "repro", "prepare"], repo)
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code, sys.executable, "pipeline/train.py",
                           "--variant", "baseline"], cwd=repo, env=_env(), capture_output=True,
                          text=True, timeout=1800, check=True)
    kib = int(proc.stdout.split()[-1])
    return emit({"bench": "pipeline", "what": "train_peak_rss", "size": size,
                 "peak_rss_mib": kib / 1024, "steps": SMALL["train"]["max_steps_per_epoch"]})


def bench_study(root: Path) -> list[dict]:
    """The default study (params.yaml as it is) in a fresh copy, one stage at a time."""
    repo = make_repo(root / "study", {})
    records = []
    total = 0.0
    for stage in stage_names(repo):
        seconds = sh(["dvc", "repro", "-s", stage], repo)
        total += seconds
        records.append(emit({"bench": "study", "stage": stage, "seconds": seconds}))
    records.append(emit({"bench": "study", "stage": "total", "seconds": total,
                         "target_s": 600.0}))
    return records


def run(full: bool = True, study: bool = False) -> list[dict]:
    """No-op repro and start-ups (always), RSS at 256 px (full), the study (``study``)."""
    records = []
    with tempfile.TemporaryDirectory(prefix="bench_pipeline-") as tmp:
        root = Path(tmp)
        records += bench_small_study(root)
        if full:
            records.append(bench_train_rss(root))
        if study:
            records += bench_study(root)
    return records


def main(argv: list[str] | None = None) -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-rss", action="store_true", help="skip train's RSS at 256 px")
    parser.add_argument("--study", action="store_true", help="also time the default study "
                        "(about 13 min on 2 cores)")
    args = parser.parse_args(argv)
    run(full=not args.no_rss, study=args.study)


if __name__ == "__main__":
    main()
