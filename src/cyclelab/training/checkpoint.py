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

from cyclelab.io import atomic_path


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:  # noqa: D103
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a crash mid-write keeps the previous file)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_if_matching(path: str | Path, fingerprint: str) -> tuple[dict | None, str]:
    """The checkpoint at ``path`` if its fingerprint matches, with a sentence for the log."""
    path = Path(path)
    if not path.exists():
        return None, "no checkpoint: starting fresh"
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file is not worth dying for
        return None, f"checkpoint {path} unreadable ({type(exc).__name__}): starting fresh"
    if state.get("fingerprint") != fingerprint:
        return None, (f"checkpoint {path} was made with other params "
                      f"({state.get('fingerprint')} != {fingerprint}): starting fresh")
    return state, f"resuming from {path} after epoch {state['epoch'] + 1}"
