"""Staged training, seeds/004 Algorithm 1: a sequence of stages, each with its own batch size,
epochs and evaluation interval and a fresh seed; every ``eval_every`` epochs the weights are a
candidate, scored on a fixed validation subset (FID or KID, lower wins); the best candidate of a
stage starts the next one, and the best of the last stage is the result. Seeds/004 scored on test
images, which ``evaluate`` then scores too: a choice made on them biases the reported score, so
candidates read ``data/prepared/val{A,B}`` (``data.val_fraction``).

The report collected the candidates and scored them after the stage; scoring each one when it
is made and keeping the best so far selects the same weights without storing every candidate.
The keeper's state travels in the training checkpoint, so a killed staged run resumes too.
Seeds/004 chose by GMS = sqrt(FID / IS); IS needs the 1008-logit Inception network
(``eval.is_weights``), which is not always available, so candidates are chosen by FID or KID.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cyclelab.directions import DIRECTIONS
from cyclelab.runtime import Runtime
from cyclelab.training import checkpoint
from cyclelab.training.loop import FitResult, fit


@dataclass(frozen=True)
class Stage:
    """One stage of Algorithm 1."""

    batch_size: int
    epochs: int
    eval_every: int


def stages_of(train_cfg) -> list[Stage]:
    """The stages of ``train.stage_*`` (empty: ordinary training)."""
    return [Stage(b, e, k) for b, e, k in zip(train_cfg.stage_batch_sizes, train_cfg.stage_epochs,
                                              train_cfg.stage_eval_every, strict=True)]


class BestKeeper:
    """The lowest-scoring candidate so far (all networks' weights) and every score seen."""

    def __init__(self) -> None:
        self.best: dict[str, Any] | None = None
        self.scores: list[dict[str, float]] = []

    def offer(self, stage: int, epoch: int, score: float, nets: dict[str, torch.nn.Module]) -> bool:
        """Record ``score`` of the weights after ``epoch``; keep them if they are the best."""
        self.scores.append({"stage": stage, "epoch": epoch, "score": score})
        if self.best is not None and score >= self.best["score"]:
            return False
        self.best = {"stage": stage, "epoch": epoch, "score": score,
                     "nets": {k: copy.deepcopy(v.state_dict()) for k, v in nets.items()}}
        return True

    def state_dict(self) -> dict:  # noqa: D102
        return {"best": self.best, "scores": self.scores}

    def load_state_dict(self, state: dict) -> None:  # noqa: D102
        self.best, self.scores = state["best"], list(state["scores"])


class StagedTask:
    """A task whose checkpointed state also holds the stage index, the keeper of the current
    stage and the choices of the stages before it."""

    def __init__(self, task, stage: int, keeper: BestKeeper, choices: list[dict],
                 history: list[dict]) -> None:
        self.task, self.stage, self.keeper, self.choices = task, stage, keeper, choices
        self.history = history  # the epochs of the stages before this one
        self.nets, self.optimizers = task.nets, task.optimizers

    def step(self, batch):  # noqa: D102
        return self.task.step(batch)

    def extra_state(self) -> dict[str, Any]:  # noqa: D102
        return {"task": self.task.extra_state(), "stage": self.stage,
                "keeper": self.keeper.state_dict(), "choices": self.choices,
                "history": self.history}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: D102
        self.task.load_extra_state(state["task"])
        self.keeper.load_state_dict(state["keeper"])
        self.choices[:] = state["choices"]
        self.history[:] = state["history"]


def _saved_stage(path: Path, fingerprint: str) -> int:
    """The stage a checkpoint of this run (any stage) was written in, or -1."""
    for_stage = {}
    if path.exists():
        try:
            state = checkpoint.load_state(path)
            for_stage = state if isinstance(state, dict) else {}
        except Exception:  # unreadable: fit() reports it by name and starts fresh
            return -1
    saved = str(for_stage.get("fingerprint", ""))
    if not saved.startswith(fingerprint + ":stage"):
        return -1
    return int(saved.rsplit("stage", 1)[1])


def run_stages(
    stages: list[Stage],
    build_task: Callable[[int, int], Any],
    build_batches: Callable[[int, int], Callable],
    schedule_for: Callable[[int], Callable],
    score: Callable[[dict[str, torch.nn.Module]], float],
    *,
    seed: int,
    checkpoint_path: str | Path,
    fingerprint: str,
    desc: str = "train",
    on_choice: Callable[[dict], None] | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    **fit_kwargs: Any,
) -> tuple[Any, FitResult, list[dict]]:
    """Run Algorithm 1. ``build_task(stage, seed)`` makes a fresh task (new optimisers and
    pools), ``build_batches(batch_size, seed)`` its data, ``schedule_for(epochs)`` its LR
    schedule and ``score(nets)`` a candidate's score; ``on_epoch_end`` gets epochs counted over
    all stages. Returns the last task holding the best
    weights, the concatenated history and one choice per stage (stage, epoch, score, all
    scores)."""
    checkpoint_path = Path(checkpoint_path)
    done = _saved_stage(checkpoint_path, fingerprint)
    best_nets, choices, history = None, [], FitResult()
    task = None
    for index, stage in enumerate(stages):
        if index < done:
            continue  # finished before an interruption; its choice is in the checkpoint
        stage_seed = seed + 1000 * index  # seeds/004: a new random seed every stage
        torch.manual_seed(stage_seed)
        task = build_task(index, stage_seed)
        if best_nets is not None:
            for name, net in task.nets.items():
                net.load_state_dict(best_nets[name])
        keeper = BestKeeper()
        staged = StagedTask(task, index, keeper, choices, history.history)

        offset = sum(s.epochs for s in stages[:index])

        def stage_epoch_end(epoch: int, row: dict, staged=staged, stage=stage,
                            offset=offset) -> None:
            if (epoch + 1) % stage.eval_every == 0 or epoch + 1 == stage.epochs:
                value = score(staged.nets)
                staged.keeper.offer(staged.stage, epoch + 1, value, staged.nets)
                row["candidate_score"] = value
            # In place: what on_epoch_end adds (the eval curve's FID/KID) reaches the history.
            row["stage"] = staged.stage + 1
            if on_epoch_end is not None:
                on_epoch_end(offset + epoch, row)

        result = fit(staged, build_batches(stage.batch_size, stage_seed), epochs=stage.epochs,
                     schedule=schedule_for(stage.epochs), checkpoint_path=checkpoint_path,
                     fingerprint=f"{fingerprint}:stage{index}",
                     desc=f"{desc} stage {index + 1}/{len(stages)}",
                     on_epoch_end=stage_epoch_end, **fit_kwargs)
        history.history += [{**row, "stage": index + 1} for row in result.history]
        best = keeper.best
        for name, net in task.nets.items():
            net.load_state_dict(best["nets"][name])
        best_nets = best["nets"]
        choice = {"stage": index + 1, "epoch": best["epoch"], "score": best["score"],
                  "batch_size": stage.batch_size, "seed": stage_seed,
                  "candidates": [(s["epoch"], s["score"]) for s in keeper.scores]}
        choices.append(choice)
        seen = ", ".join(f"{s['score']:.4g}" for s in keeper.scores)
        print(f"{desc} stage {index + 1}/{len(stages)}: best candidate after epoch "
              f"{best['epoch']} (score {best['score']:.4g} of {seen})")
        if on_choice is not None:
            on_choice(choice)
    return task, history, choices


def selection_metric(stage_select: str, is_weights: str) -> str:
    """The score ``train.stage_select`` picks candidates by: ``gms_or_kid`` resolves to GMS when
    the IS network (``eval.is_weights``) is given, else KID (seeds/004 without it)."""
    if stage_select == "gms_or_kid":
        return "gms" if is_weights else "kid"
    return stage_select


def candidate_scorer(scorer: Callable[..., dict[str, float]], runtime: Runtime,
                     metric: str = "fid") -> Callable[[dict[str, torch.nn.Module]], float]:
    """Score = the mean over both directions of FID, KID (x1000) or GMS (sqrt(FID / IS),
    seeds/004's) between the translated and the real validation images of a fixed subset
    (never test images: evaluate scores those), evaluated with the exported generators (EMA
    when on). ``scorer``: the
    :class:`~cyclelab.metrics.translation.CurveScorer` of that subset, asked for ``metric``
    (its real statistics are computed once)."""
    scale = 1000.0 if metric == "kid" else 1.0  # KID x1000: FID's order of magnitude

    def score(nets: dict[str, torch.nn.Module]) -> float:
        G_ab, G_ba = nets.get("G_ab_ema", nets["G_ab"]), nets.get("G_ba_ema", nets["G_ba"])
        scores = scorer(G_ab, G_ba, runtime)
        values = [scale * scores[f"{metric}_{d.key}"] for d in DIRECTIONS]
        return float(sum(values) / len(values))

    return score
