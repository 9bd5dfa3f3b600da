"""The one training machinery: epochs, LR schedules, step logging, resumable checkpoints.

Autoencoder pretraining and CycleGAN training differ only in their :class:`Task` (the step).
The full state is written atomically after every epoch and every ``checkpoint_minutes`` inside
an epoch, so a killed run resumes where it stopped and ends with the weights of an
uninterrupted one (on the CPU). A NaN or Inf loss stops the run with the step number; the last
good checkpoint stays as it was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from cyclelab.errors import UserError
from cyclelab.training import checkpoint
from cyclelab.training.schedules import Schedule


class Task(Protocol):
    """What a training loop needs from a model: its networks, optimisers and one step."""

    nets: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def step(self, batch: Any) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the losses as floats."""

    def extra_state(self) -> dict[str, Any]:
        """State beyond nets/optimisers/schedulers (an image pool, say)."""

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: D102
        ...


class TrainingDiverged(UserError):
    """A loss became NaN or Inf: the run stops, the last good checkpoint is kept."""


@dataclass
class FitResult:
    """What :func:`fit` did: one row of mean losses per epoch, and whether it resumed."""

    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0
    message: str = ""


def _restore(task: Task, schedulers: dict, state: dict, path: Path) -> None:
    """Load ``state`` into ``task`` only after checking that every part fits (never half)."""
    problems = checkpoint.incompatibilities(state, task.nets, task.optimizers, schedulers)
    if problems:
        raise checkpoint.CheckpointError(
            f"checkpoint {path} does not fit this run ({problems[0]}); delete it or restore the "
            f"code that wrote it")
    for name, net in task.nets.items():
        net.load_state_dict(state["nets"][name])
    for name, opt in task.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    for name, sched in schedulers.items():
        sched.load_state_dict(state["schedulers"][name])
    task.load_extra_state(state["extra"])
    checkpoint.set_rng_state(state["rng"])


def fit(
    task: Task,
    batches: Callable[[int], Iterable[Any]],
    *,
    epochs: int,
    schedule: Schedule,
    checkpoint_path: str | Path | None,
    fingerprint: str,
    desc: str = "train",
    log_every: int = 10,
    checkpoint_minutes: float = 0.0,
    is_main: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    resume: str = "auto",
) -> FitResult:
    """Train ``task`` for ``epochs`` epochs over ``batches(epoch)``.

    Resumes from ``checkpoint_path`` when its fingerprint matches, also from inside an epoch:
    ``batches(epoch)`` depends only on the epoch, so the batches already trained on are skipped.
    Only the main process (``is_main``, rank 0 of a distributed run) writes checkpoints; with
    ``checkpoint_path`` None nothing is read or written (a run of seconds, the classifier's).
    ``resume`` is ``train.resume``: ``never`` starts fresh whatever the file holds; an
    unreadable file stops the run (:func:`checkpoint.load_if_matching`).
    """
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, schedule)
                  for name, opt in task.optimizers.items()}
    result = FitResult()
    if checkpoint_path is None:
        state, result.message = None, "no checkpoint: starting fresh"
    else:
        checkpoint_path = Path(checkpoint_path)
        state, result.message = checkpoint.load_if_matching(checkpoint_path, fingerprint, resume)
    start, partial = 0, None
    if state is not None:
        _restore(task, schedulers, state, checkpoint_path)
        result.history = list(state["history"])
        start = result.resumed_from_epoch = state["epoch"] + 1
        partial = state.get("partial")
        if partial:
            result.message += f", {partial['steps']} steps into epoch {start + 1}"
    if is_main:  # one line per run, not one per rank
        print(f"{desc}: {result.message}")
    global_step = sum(int(row.get("steps", 0)) for row in result.history)
    interval = checkpoint_minutes * 60.0

    def save(epoch_done: int, partial_state: dict | None) -> None:
        if not is_main or checkpoint_path is None:
            return
        checkpoint.save(checkpoint_path, {
            "fingerprint": fingerprint, "epoch": epoch_done, "history": result.history,
            "partial": partial_state,
            "nets": {k: v.state_dict() for k, v in task.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in task.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in schedulers.items()},
            "extra": task.extra_state(), "rng": checkpoint.rng_state(),
        })

    for epoch in range(start, epochs):
        for net in task.nets.values():
            net.train()
        sums: dict[str, float] = {}
        steps, skip, elapsed = 0, 0, 0.0
        if partial:
            sums, steps, skip = dict(partial["sums"]), partial["steps"], partial["steps"]
            elapsed, partial = partial["seconds"], None
        started = last_save = time.perf_counter()
        bar = tqdm(batches(epoch), desc=f"{desc} epoch {epoch + 1}/{epochs}", leave=False,
                   disable=None)
        for index, batch in enumerate(bar):
            if index < skip:
                continue  # trained on before the interruption
            losses = task.step(batch)
            steps += 1
            global_step += 1
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                kept = (f"the last good checkpoint {checkpoint_path} is kept"
                        if checkpoint_path is not None and checkpoint_path.exists()
                        else "no checkpoint was written yet")
                raise TrainingDiverged(
                    f"{desc}: {bad[0]} = {losses[bad[0]]} at step {global_step} (epoch "
                    f"{epoch + 1}, step {steps} of the epoch); {kept}. Lower train.lr, add "
                    f"train.lambda_gp or use train.precision fp32")
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            if on_step is not None and global_step % log_every == 0:
                on_step(global_step, losses)
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(losses.items())[:4]})
            now = time.perf_counter()
            if interval > 0 and now - last_save >= interval:
                save(epoch - 1, {"steps": steps, "sums": sums,
                                 "seconds": elapsed + now - started})
                last_save = time.perf_counter()
        row = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
               "lr": next(iter(task.optimizers.values())).param_groups[0]["lr"],
               "steps": steps, "seconds": round(elapsed + time.perf_counter() - started, 3)}
        for sched in schedulers.values():
            sched.step()
        result.history.append(row)
        if is_main:
            print(f"{desc} epoch {epoch + 1}/{epochs}: " + ", ".join(
                f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch", "steps")))
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        save(epoch, None)
    return result
