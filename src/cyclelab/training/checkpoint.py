"""Checkpoints: full training state written atomically, resumed only when the params match.

A DVC ``persist: true`` output is handed to every new experiment as it was in the parent
commit, so a sweep over ``train.lr`` would otherwise resume the parent's run. Each checkpoint
stores a fingerprint of every output-affecting param; a mismatch starts fresh and says so.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cyclelab.errors import UserError
from cyclelab.io import atomic_path


class CheckpointError(UserError):
    """A checkpoint that matches the params but not the networks: reported, never half-loaded."""


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (where CUDA is in use) every CUDA device's RNG states:
    dropout and any random op on the GPU draw from the latter."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`; CUDA states are restored where CUDA is in use (a run resumed
    on a machine without it keeps the CPU streams, which decide the data order)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        saved = list(state["cuda"])
        count = torch.cuda.device_count()
        # The same number of devices resumes every stream; fewer or more keep device 0's order.
        torch.cuda.set_rng_state_all(saved if len(saved) == count else saved[:1] * count)


# What a checkpoint holds besides tensors, numbers and strings: NumPy's RNG state (an array).
# Loading allows these and nothing else (weights_only), so a checkpoint cannot run code. The
# array reconstructor is taken from the public pickling protocol (its module moved in NumPy 2).
_NUMPY_TYPES = [np.ndarray, np.dtype, type(np.dtype(np.uint32)), np.zeros(0).__reduce__()[0]]


def load_state(path: str | Path) -> Any:
    """Read a checkpoint written by :func:`save` (weights_only: no pickled code runs)."""
    with torch.serialization.safe_globals(_NUMPY_TYPES):
        return torch.load(path, map_location="cpu", weights_only=True)


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a crash mid-write keeps the previous file)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


RESUME_HINT = "delete it to start fresh, or set train.resume: never to overwrite it"


def load_if_matching(path: str | Path, fingerprint: str,
                     resume: str = "auto") -> tuple[dict | None, str]:
    """The checkpoint at ``path`` if its fingerprint matches, with a sentence for the log.

    A missing file, or one made with other params, starts fresh. An unreadable one stops with
    :class:`CheckpointError` and stays where it is: with ``persist: true`` it may hold hours of
    training (a truncated copy, another torch version, a disk error), so discarding it is the
    user's call. ``resume="never"`` starts fresh without reading the file (``train.resume``)."""
    path = Path(path)
    if resume == "never":
        return None, "train.resume never: starting fresh (the checkpoint is overwritten)"
    if not path.exists():
        return None, "no checkpoint: starting fresh"
    try:
        state = load_state(path)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
                              f"{RESUME_HINT}") from None
    if not isinstance(state, dict) or not {"fingerprint", "epoch", "nets"} <= set(state):
        return None, f"checkpoint {path} is not a training checkpoint: starting fresh"
    if state.get("fingerprint") != fingerprint:
        return None, (f"checkpoint {path} was made with other params "
                      f"({state.get('fingerprint')} != {fingerprint}): starting fresh")
    return state, f"resuming from {path} after epoch {state['epoch'] + 1}"


def incompatibilities(state: dict, nets: dict, optimizers: dict, schedulers: dict) -> list[str]:
    """Why ``state`` cannot be loaded into these nets/optimisers (empty when it can): checked
    before anything is loaded, so a mismatch never leaves a half-loaded model."""
    problems = []
    for part, objects in (("nets", nets), ("optimizers", optimizers),
                          ("schedulers", schedulers)):
        missing = sorted(set(objects) - set(state.get(part, {})))
        if missing:
            problems.append(f"no {part} entry {missing[0]!r}")
    for name, net in nets.items():
        saved = state.get("nets", {}).get(name)
        if saved is None:
            continue
        own = net.state_dict()
        for key in sorted(set(own) | set(saved)):
            if key not in saved or key not in own:
                problems.append(f"{name}: {'missing' if key not in saved else 'unexpected'} "
                                f"weight {key}")
                break
            if tuple(own[key].shape) != tuple(saved[key].shape):
                problems.append(f"{name}.{key}: shape {tuple(saved[key].shape)} in the file, "
                                f"{tuple(own[key].shape)} here")
                break
    for name, opt in optimizers.items():
        saved = state.get("optimizers", {}).get(name)
        if saved is None:
            continue
        sizes = [len(g["params"]) for g in saved.get("param_groups", [])]
        if sizes != [len(g["params"]) for g in opt.param_groups]:
            problems.append(f"optimizer {name}: parameter groups {sizes} in the file")
    return problems


def restart_optimizers(path: str | Path, optimizers: dict, nets: dict, *, weights: Path,
                       producer: str) -> None:
    """Start ``optimizers`` from the per-parameter state (Adam's moments and step counts, SGD's
    momentum) of the finished run whose checkpoint is ``path``, keeping their own
    hyperparameters: the learning rate, betas and momentum stay the caller's, so the caller's
    schedule applies (a parent's linear decay ended at 0). ``train.restart_optimizers: parent``.

    ``nets`` (the discriminators the run starts from, loaded from ``weights``) must equal the
    checkpoint's: a checkpoint written after those weights (a later or interrupted run of
    ``producer``) is refused rather than paired with weights it does not belong to."""
    path = Path(path)
    fix = f"rerun {producer}, or set train.restart_optimizers: fresh"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; train.restart_optimizers parent reads the "
                              f"parent's final optimiser state from it: dvc checkout {path}, "
                              f"{fix}")
    try:
        state = load_state(path)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}); "
                              f"{fix}") from None
    if not isinstance(state, dict) or not {"nets", "optimizers"} <= set(state):
        raise CheckpointError(f"{path} is not a training checkpoint; {fix}")
    problems = incompatibilities(state, {}, optimizers, {})
    for name, net in nets.items():
        saved = state["nets"].get(name, {})
        own = net.state_dict()
        if set(saved) != set(own) or any(not torch.equal(saved[k].cpu(), own[k].cpu())
                                         for k in own):
            problems.append(f"its {name} is not the one in {weights}: a later or interrupted "
                            "run wrote it")
            break
    if problems:
        raise CheckpointError(f"{path} does not fit the weights this finetune starts from "
                              f"({problems[0]}); {fix}")
    for name, opt in optimizers.items():
        own_groups = opt.state_dict()["param_groups"]
        opt.load_state_dict({"state": state["optimizers"][name]["state"],
                             "param_groups": own_groups})
