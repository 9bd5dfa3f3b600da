"""LR schedules as epoch -> multiplier."""

from __future__ import annotations

import pytest

from cyclelab import config
from cyclelab.training.schedules import build_schedule


def train_cfg(**kw) -> config.TrainConfig:
    return config.from_dict({"train": kw}).train


def test_linear_matches_the_papers_code():
    # 100 constant + 100 decay epochs: multiplier 1 - max(0, e + 1 - 100) / 101
    sched = build_schedule(train_cfg(epochs=200, epochs_decay=100, lr_policy="linear"))
    assert sched(0) == 1.0 and sched(98) == 1.0
    assert sched(99) == pytest.approx(1 - 0 / 101)
    assert sched(100) == pytest.approx(1 - 1 / 101)
    assert sched(199) == pytest.approx(1 - 100 / 101)
    assert all(sched(e) >= sched(e + 1) for e in range(199))


def test_linear_default_decays_over_second_half():
    sched = build_schedule(train_cfg(epochs=4, lr_policy="linear"))
    assert [round(sched(e), 4) for e in range(4)] == [1.0, 1.0, round(1 - 1 / 3, 4),
                                                       round(1 - 2 / 3, 4)]


def test_constant_and_step():
    assert build_schedule(train_cfg(lr_policy="constant"))(123) == 1.0
    step = build_schedule(train_cfg(lr_policy="step", lr_step_epochs=10, lr_gamma=0.5))
    assert (step(9), step(10), step(25)) == (1.0, 0.5, 0.25)


def test_cosine_restarts_cycles():
    sched = build_schedule(train_cfg(lr_policy="cosine_restarts", lr=2.0e-4, lr_min=1.0e-5,
                                     lr_t0=10, lr_t_mult=2))
    floor = 1.0e-5 / 2.0e-4
    assert sched(0) == pytest.approx(1.0)
    assert sched(5) == pytest.approx(floor + (1 - floor) * 0.5)
    assert sched(10) == pytest.approx(1.0)  # restart, next cycle lasts 20
    assert sched(20) == pytest.approx(floor + (1 - floor) * 0.5)
    assert sched(30) == pytest.approx(1.0)
    assert min(sched(e) for e in range(70)) >= floor
