"""Learning-rate schedules (``train.lr_policy``) as epoch -> multiplier of the base rate."""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int], float]


def constant(cfg) -> Schedule:
    """The base rate throughout."""
    return lambda epoch: 1.0


def decay_epochs(cfg) -> int:
    """Epochs of linear decay: ``train.epochs_decay``, or half of ``train.epochs`` when -1."""
    return cfg.epochs // 2 if cfg.epochs_decay < 0 else min(cfg.epochs_decay, cfg.epochs)


def linear(cfg) -> Schedule:
    """Constant, then linear decay to zero over the last ``decay_epochs`` epochs (the paper: 100
    + 100). Multiplier at epoch e (0-based): 1 - max(0, e + 1 - keep) / (decay + 1)."""
    decay = decay_epochs(cfg)
    keep = cfg.epochs - decay
    return lambda epoch: 1.0 - max(0, epoch + 1 - keep) / float(decay + 1)


def step(cfg) -> Schedule:
    """Multiply by ``lr_gamma`` every ``lr_step_epochs`` epochs."""
    return lambda epoch: cfg.lr_gamma ** (epoch // cfg.lr_step_epochs)


def cosine_restarts(cfg) -> Schedule:
    """SGDR cosine annealing with warm restarts (seeds/004: T_0=10, T_mult=2, min 1e-5), from
    the base rate down to ``lr_min``; the first cycle lasts ``lr_t0`` epochs, each next one
    ``lr_t_mult`` times longer."""
    floor = min(1.0, cfg.lr_min / cfg.lr)

    def schedule(epoch: int) -> float:
        t_cur, t_i = epoch, cfg.lr_t0
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= cfg.lr_t_mult
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))

    return schedule


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant, "linear": linear, "step": step, "cosine_restarts": cosine_restarts,
}


def build_schedule(cfg) -> Schedule:
    """The schedule registered as ``cfg.lr_policy`` (``cfg`` is a ``TrainConfig``)."""
    return SCHEDULES[cfg.lr_policy](cfg)
