"""Evaluation runs in fp32 on every device, whatever ``train.precision``: the runtime that the
evaluate and reference stages build, seen on a (pretended) CUDA device that supports bf16."""

from __future__ import annotations

import argparse
import dataclasses
import importlib

import pytest
import torch

from cyclelab import runtime as runtime_module


class Built(Exception):
    """Raised by the spy once a stage has built its runtime: nothing after it needs to run."""


@pytest.fixture
def fake_cuda(monkeypatch) -> list:
    """``device: cuda`` resolves on this machine, bf16 is "supported", and every Runtime that
    ``make_runtime`` builds is recorded, then stops the stage."""
    built: list = []
    real = runtime_module.Runtime

    def spy(device: torch.device, precision: str = "fp32") -> runtime_module.Runtime:
        built.append(real(device, precision))
        raise Built

    monkeypatch.setattr(runtime_module, "pick_device", lambda name="auto": torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # make_runtime sets it
    monkeypatch.setattr(runtime_module, "Runtime", spy)
    return built


def test_eval_runtime_is_fp32_where_training_runs_in_bf16(fake_cuda):
    from cyclelab.metrics.translation import eval_runtime

    for build in (lambda: runtime_module.make_runtime("cuda", "auto"),
                  lambda: eval_runtime("cuda")):
        with pytest.raises(Built):
            build()
    training, evaluation = fake_cuda
    assert training.precision == "bf16"  # the pretended GPU is one where autocast would run
    assert (evaluation.device.type, evaluation.precision) == ("cuda", "fp32")


@pytest.mark.parametrize("stage", ["evaluate", "reference"])
def test_stages_evaluate_in_fp32_when_training_ran_in_bf16(stage, fake_cuda, tiny_params):
    cfg = dataclasses.replace(tiny_params, device="cuda",
                              train=dataclasses.replace(tiny_params.train, precision="bf16"))
    module = importlib.import_module(f"pipeline.{stage}")
    with pytest.raises(Built):
        module.main(cfg, argparse.Namespace(variant="baseline", seed=None))
    assert len(fake_cuda) == 1
    assert (fake_cuda[0].device.type, fake_cuda[0].precision) == ("cuda", "fp32")


@pytest.fixture
def tf32_on():
    """PyTorch's default, cuDNN convolutions in TF32, restored afterwards (``monkeypatch`` cannot
    set these flags: they are properties of module objects)."""
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision, matmul.fp32_precision = "tf32", "tf32"
    yield
    conv.fp32_precision, matmul.fp32_precision = before


def test_eval_runtime_turns_tf32_off_on_cuda(monkeypatch, tf32_on):
    """fp32 evaluation is fp32 on Ampere and newer too: PyTorch's default lets cuDNN run fp32
    convolutions in TF32 (a 10-bit mantissa), so the evaluate and reference stages turn it off."""
    from cyclelab.metrics import translation

    monkeypatch.setattr(runtime_module, "pick_device", lambda name="auto": torch.device("cuda"))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # make_runtime sets it
    assert translation.eval_runtime("cuda").precision == "fp32"
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


def test_eval_runtime_leaves_tf32_alone_on_the_cpu(tf32_on):
    from cyclelab.metrics import translation

    assert translation.eval_runtime("cpu").device.type == "cpu"
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
