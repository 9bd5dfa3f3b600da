"""A 3 x 1 sweep over two keys as a user runs one: `dvc exp run -S ... -S ... --queue` then
`dvc queue start -j 2`. All three experiments finish, two at a time; each appears in
`dvc exp show` with its params and metrics and in MLflow with its params; the runs of the
sweep carry one sweep tag (``cyclelab.sweep``: the baseline commit, see tracking.sweep_id).

The grid holds the study's own values (lambda_cycle 10 and its lr): DVC finds that experiment
up to date and runs nothing, so its MLflow run is the committed study's; the other two train,
side by side. (Three points, not four: a fourth trains one more tiny run and asserts nothing
new; the product of two lists is DVC's.)"""

from __future__ import annotations

import json
import math
import sqlite3
import time

import pytest
import yaml

from tests.tinyrepo import clone_dir, reproduced, sh

# One xdist worker runs test_faults, test_sweep and test_team: they share one reproduced study.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reproduced")]

LAMBDAS = (5.0, 7.0, 10.0)  # the study's own lambda_cycle is 10


def wait_for_queue(repo, timeout: float = 1200) -> list[str]:
    """The queue's task lines once none is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        out = sh(["dvc", "queue", "status"], repo).stdout
        tasks = [line for line in out.splitlines()[1:] if line.strip() and
                 not line.startswith("Worker")]
        if not any(word in line for line in tasks for word in ("Queued", "Running")):
            return tasks
        assert time.monotonic() < deadline, out
        time.sleep(3)


def tag_rows(db, key: str) -> dict[str, str]:
    return dict(db.execute("SELECT run_uuid, value FROM tags WHERE key = ?", (key,)))


def test_queued_grid_two_at_a_time(tmp_path_factory):
    repo = clone_dir(reproduced(tmp_path_factory), tmp_path_factory.mktemp("sweep") / "repo")
    baseline = sh(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    study = yaml.safe_load((repo / "params.yaml").read_text())["train"]
    own = (study["lambda_cycle"], study["lr"])
    points = {(lam, study["lr"]) for lam in LAMBDAS}
    assert own in points
    sh(["dvc", "exp", "run", "--queue", "-S", "train.lambda_cycle=" + ",".join(map(str, LAMBDAS)),
        "-S", f"train.lr={study['lr']}", "evaluate"], repo)
    try:
        sh(["dvc", "queue", "start", "-j", "2"], repo)
        tasks = wait_for_queue(repo)
    finally:
        sh(["dvc", "queue", "stop", "--kill"], repo, check=False)
    assert len(tasks) == len(points) and all("Success" in line for line in tasks), tasks

    show = json.loads(sh(["dvc", "exp", "show", "--json"], repo).stdout)
    grid = {}
    for commit in show:
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                train = rev["data"]["params"]["params.yaml"]["data"]["train"]
                (scores,) = [m["data"] for path, m in rev["data"]["metrics"].items()
                             if path.startswith("reports/seeds/")]
                assert math.isfinite(scores["A_to_B"]["fid"]), rev["name"]
                grid[rev["name"]] = (train["lambda_cycle"], train["lr"])
    assert set(grid.values()) == points and len(grid) == len(points)

    with sqlite3.connect(repo / "mlflow.db") as db:
        exp_names = tag_rows(db, "dvc_exp_name")
        stages = tag_rows(db, "stage")
        sweeps = tag_rows(db, "cyclelab.sweep")
        runs = {run for run, stage in stages.items()
                if stage == "train" and exp_names.get(run) in grid}
        params = {(run, key): value for run, key, value in db.execute(
            "SELECT run_uuid, key, value FROM params WHERE key IN "
            "('train.lambda_cycle', 'train.lr')")}
        times = db.execute("SELECT run_uuid, status, start_time, end_time FROM runs").fetchall()

    def point(run: str) -> tuple[float, float]:
        return float(params[run, "train.lambda_cycle"]), float(params[run, "train.lr"])

    # Two experiments trained; the study's own run stands for the third grid point.
    assert {point(run) for run in runs} == points - {own} and len(runs) == 2
    assert {sweeps[run] for run in runs} == {f"exp-{baseline[:7]}"}
    assert any(stage == "train" and run not in exp_names and point(run) == own
               for run, stage in stages.items())
    spans = sorted((start, end) for run, status, start, end in times
                   if run in runs and status == "FINISHED")
    assert len(spans) == len(runs)
    # -j 2: the two trainings overlapped in time.
    assert any(a_end > b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
