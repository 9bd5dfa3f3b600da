"""Staged training (seeds/004 Algorithm 1): the best-scoring candidate of a stage starts the
next one and is the result of the last; a run killed inside stage 2 resumes to the same end."""

from __future__ import annotations

import pytest
import torch

from cyclelab import config
from cyclelab.data.dataset import UnpairedBatches
from cyclelab.models.build import build_discriminator, build_generator
from cyclelab.runtime import make_runtime
from cyclelab.training.cyclegan import CycleGAN
from cyclelab.training.staged import Stage, candidate_scorer, run_stages, stages_of


def images(n: int, value: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(value)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)


class Scores:
    """Hands out fixed scores and remembers the weights each candidate had."""

    def __init__(self, values: list[float], fail_at: int = -1) -> None:
        self.values, self.fail_at, self.seen = values, fail_at, []

    def __call__(self, nets) -> float:
        if len(self.seen) == self.fail_at:
            raise KeyboardInterrupt  # the process dies here
        self.seen.append({k: v.detach().clone() for k, v in nets["G_ab"].state_dict().items()})
        return self.values[len(self.seen) - 1]


def run(cfg, stages, scores, ckpt):
    m = cfg.model

    def build_task(stage, seed):
        return CycleGAN(build_generator(m), build_generator(m), build_discriminator(m),
                        build_discriminator(m), cfg.train, make_runtime("cpu"), seed=seed)

    def build_batches(batch_size, seed):
        return UnpairedBatches(images(6, 1), images(6, 2), batch_size, seed, max_steps=2)

    # Stage 2 trains with lr 0: its weights stay what stage 1 handed over.
    return run_stages(stages, build_task, build_batches,
                      lambda epochs: (lambda e: 1.0) if epochs == 3 else (lambda e: 0.0),
                      scores, seed=0, checkpoint_path=ckpt, fingerprint="fp", desc="test")


def equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


STAGES = [Stage(batch_size=2, epochs=3, eval_every=1), Stage(batch_size=1, epochs=1, eval_every=1)]


def test_best_candidate_is_carried_and_chosen(tiny_params, tmp_path):
    scores = Scores([3.0, 1.0, 2.0, 5.0])
    task, history, choices = run(tiny_params, STAGES, scores, tmp_path / "c.pt")
    assert [c["epoch"] for c in choices] == [2, 1]
    assert choices[0]["candidates"] == [(1, 3.0), (2, 1.0), (3, 2.0)]
    assert not equal(scores.seen[1], scores.seen[2])  # training went on after the best
    assert equal(scores.seen[3], scores.seen[1])      # stage 2 started from epoch 2's weights
    assert equal({k: v for k, v in task.nets["G_ab"].state_dict().items()}, scores.seen[3])
    assert [row["stage"] for row in history.history] == [1, 1, 1, 2]


def test_killed_in_stage_two_resumes_to_the_same_choice(tiny_params, tmp_path):
    full = Scores([3.0, 1.0, 2.0, 5.0])
    run(tiny_params, STAGES, full, tmp_path / "full.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tiny_params, STAGES, Scores([3.0, 1.0, 2.0, 5.0], fail_at=3), tmp_path / "k.pt")
    resumed = Scores([5.0])
    _, history, choices = run(tiny_params, STAGES, resumed, tmp_path / "k.pt")
    assert [c["epoch"] for c in choices] == [2, 1] and len(history.history) == 4
    assert equal(resumed.seen[0], full.seen[3])


def test_stage_params_are_validated(tiny_raw):
    tiny_raw["train"].update(stage_batch_sizes=[3, 2, 1], stage_epochs=[100, 50, 30],
                             stage_eval_every=[10, 5, 3])
    assert [s.batch_size for s in stages_of(config.from_dict(tiny_raw).train)] == [3, 2, 1]
    tiny_raw["train"]["stage_eval_every"] = [10, 5]
    with pytest.raises(config.ConfigError, match="one entry per stage"):
        config.from_dict(tiny_raw)


def test_candidate_score_is_the_mean_over_directions_by_the_exported_generators():
    seen = []

    def scorer(G_ab, G_ba, runtime):
        seen.append((G_ab, G_ba))
        return {"fid_A_to_B": 10.0, "fid_B_to_A": 30.0, "kid_A_to_B": 0.01, "kid_B_to_A": 0.03}

    raw, ema = {"G_ab": object(), "G_ba": object()}, {"G_ab_ema": object(), "G_ba_ema": object()}
    assert candidate_scorer(scorer, None, "fid")(raw) == pytest.approx(20.0)
    assert candidate_scorer(scorer, None, "kid")(raw | ema) == pytest.approx(20.0)  # KID x1000
    assert seen == [(raw["G_ab"], raw["G_ba"]), (ema["G_ab_ema"], ema["G_ba_ema"])]


def test_gms_or_kid_selects_by_gms_only_with_the_is_network():
    from cyclelab.training.staged import selection_metric

    assert selection_metric("gms_or_kid", "inception_is.pt") == "gms"
    assert selection_metric("gms_or_kid", "") == "kid"
    assert [selection_metric(m, "") for m in ("fid", "kid", "gms")] == ["fid", "kid", "gms"]
