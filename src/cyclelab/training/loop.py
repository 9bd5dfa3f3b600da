"""The one training machinery: epochs, LR schedules, step logging, resumable checkpoints.

Autoencoder pretraining and CycleGAN training differ only in their :class:`Task` (the step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

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


@dataclass
class FitResult:
    """What :func:`fit` did: one row of mean losses per epoch, and whether it resumed."""

    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0
    message: str = ""


def fit(
    task: Task,
    batches: Callable[[int], Iterable[Any]],
    *,
    epochs: int,
    schedule: Schedule,
    checkpoint_path: str | Path,
    fingerprint: str,
    desc: str = "train",
    log_every: int = 10,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train ``task`` for ``epochs`` epochs over ``batches(epoch)``.

    Resumes from ``checkpoint_path`` when its fingerprint matches (after every epoch the full
    state is written atomically), so an interrupted run continues where it stopped.
    """
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, schedule)
                  for name, opt in task.optimizers.items()}
    result = FitResult()
    state, result.message = checkpoint.load_if_matching(checkpoint_path, fingerprint)
    print(f"{desc}: {result.message}")
    start = 0
    if state is not None:
        for name, net in task.nets.items():
            net.load_state_dict(state["nets"][name])
        for name, opt in task.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        task.load_extra_state(state["extra"])
        checkpoint.set_rng_state(state["rng"])
        result.history = list(state["history"])
        start = result.resumed_from_epoch = state["epoch"] + 1
    global_step = sum(int(row.get("steps", 0)) for row in result.history)
    for epoch in range(start, epochs):
        for net in task.nets.values():
            net.train()
        sums: dict[str, float] = {}
        steps, started = 0, time.perf_counter()
        bar = tqdm(batches(epoch), desc=f"{desc} epoch {epoch + 1}/{epochs}", leave=False,
                   disable=None)
        for batch in bar:
            losses = task.step(batch)
            steps += 1
            global_step += 1
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            if on_step is not None and global_step % log_every == 0:
                on_step(global_step, losses)
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(losses.items())[:4]})
        row = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
               "lr": next(iter(task.optimizers.values())).param_groups[0]["lr"],
               "steps": steps, "seconds": round(time.perf_counter() - started, 3)}
        for sched in schedulers.values():
            sched.step()
        result.history.append(row)
        print(f"{desc} epoch {epoch + 1}/{epochs}: " + ", ".join(
            f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch", "steps")))
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        checkpoint.save(checkpoint_path, {
            "fingerprint": fingerprint, "epoch": epoch, "history": result.history,
            "nets": {k: v.state_dict() for k, v in task.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in task.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in schedulers.items()},
            "extra": task.extra_state(), "rng": checkpoint.rng_state(),
        })
    return result
