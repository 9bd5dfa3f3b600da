"""Tests for background removal (cyclelab.data.background) through rembg with a tiny ONNX model.

The model is built here: mask = sigmoid(8 * mean over channels of rembg's normalised input), so
bright pixels are foreground (mask 1 after rembg's min-max scaling) and black ones background.
It is loaded by rembg's ``u2net_custom`` session from a temporary ``U2NET_HOME``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from cyclelab.config import DataConfig
from cyclelab.data import prepare
from cyclelab.data.background import (
    ENV_MODEL_PATH,
    composite_on_color,
    fetch_model,
    make_background_remover,
    model_kwargs,
)
from cyclelab.errors import ConfigError, DataError
from cyclelab.paths import MANIFEST_FILE

GREEN = (0, 255, 0)


def build_tiny_u2net(path: Path) -> Path:
    """A u2net-shaped ONNX model: 1x3x320x320 input -> 1x1x320x320 mask (two ops)."""
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["mask"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_u2net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 320, 320])],
        initializer=[helper.make_tensor("gain", TensorProto.FLOAT, [], [8.0])],
    )
    # Opset 17 keeps ReduceMean's axes an attribute and is supported by every recent runtime.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_model(tmp_path, monkeypatch) -> Path:
    """The tiny model inside a temporary rembg home, announced through the environment."""
    home = tmp_path / "u2net_home"
    path = build_tiny_u2net(home / "tiny.onnx")
    monkeypatch.setenv("U2NET_HOME", str(home))
    monkeypatch.setenv(ENV_MODEL_PATH, str(path))
    return path


def half_white_half_black(width: int = 64, height: int = 48) -> Image.Image:
    """Left half white (foreground for the tiny model), right half black (background)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = 255
    return Image.fromarray(pixels)


def test_composite_on_color_blends_once():
    img = Image.new("RGB", (3, 1), (200, 100, 0))
    mask = Image.fromarray(np.array([[255, 0, 128]], np.uint8))
    out = np.asarray(composite_on_color(img, mask, (0, 0, 255))).astype(int)
    assert out[0, 0].tolist() == [200, 100, 0]
    assert out[0, 1].tolist() == [0, 0, 255]
    # Half mask: a plain average, not the mask-squared darkening of rembg's bgcolor path.
    assert np.abs(out[0, 2] - [100, 50, 127]).max() <= 1


def test_rembg_replaces_background_with_colour(tiny_model):
    remove = make_background_remover("rembg", model="u2net_custom", color=GREEN)
    out = np.asarray(remove(half_white_half_black()))
    assert out.shape == (48, 64, 3)
    # Away from the edge (rembg resizes its mask with Lanczos), the mask is ~1 or ~0.
    assert np.abs(out[:, :26].astype(int) - 255).max() <= 2
    assert np.abs(out[:, 38:].astype(int) - GREEN).max() <= 2


def test_background_none_is_identity():
    img = half_white_half_black()
    assert make_background_remover("none")(img) is img


def test_one_session_per_process(tiny_model, tmp_path, monkeypatch):
    import rembg.session_factory

    calls = []
    real = rembg.session_factory.new_session

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(rembg.session_factory, "new_session", counting)
    raw = tmp_path / "raw"
    for split in prepare.SPLITS:
        for i in range(3):
            (raw / split).mkdir(parents=True, exist_ok=True)
            half_white_half_black().save(raw / split / f"{i}.png")
    cfg = DataConfig(image_size=16, background="rembg", rembg_model="u2net_custom",
                     background_color=list(GREEN), workers=1, val_fraction=0,
                     drop_duplicates=False)  # the 12 images are one image
    summary = prepare.prepare_dataset(raw, tmp_path / "out", cfg, progress=False)
    assert {split: summary["outputs"][split] for split in prepare.SPLITS} == {
        split: 3 for split in prepare.SPLITS}
    assert len(calls) == 1


def test_prepare_removes_the_background_of_the_named_domains_only(tiny_model, tmp_path):
    """seeds/004 task 2: the animal photos (A) lose their background, the sprites (B) keep
    theirs: B's images never reach rembg when data.background_domains names only A."""
    raw = tmp_path / "raw"
    for i, split in enumerate(prepare.SPLITS):
        (raw / split).mkdir(parents=True)
        half_white_half_black(64 + 2 * i).save(raw / split / "a.png")  # distinct: no duplicates
    for domains, black_in in ((["A"], "B"), (["B"], "A")):
        cfg = DataConfig(image_size=16, background="rembg", rembg_model="u2net_custom",
                         background_color=list(GREEN), background_domains=domains, workers=1,
                         val_fraction=0)
        out = tmp_path / f"out{black_in}"
        prepare.prepare_dataset(raw, out, cfg, progress=False)
        for split in prepare.SPLITS:
            right = np.asarray(Image.open(out / split / "a.png")).astype(int)[:, 10:]
            expected = (0, 0, 0) if split.endswith(black_in) else GREEN
            assert np.abs(right - expected).max() <= 3, (domains, split)


def test_translate_removes_the_background_of_the_named_domains_only(tiny_model, tmp_path):
    """``python -m cyclelab translate`` treats a direction's source images as prepare did."""
    import torch

    from cyclelab import inference

    net = torch.nn.Conv2d(3, 3, 1)  # the identity: the output shows what the generator saw
    with torch.no_grad():
        net.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        net.bias.zero_()
    half_white_half_black().save(tmp_path / "in.png")
    cfg = DataConfig(image_size=16, background="rembg", rembg_model="u2net_custom",
                     background_color=list(GREEN), background_domains=["A"])
    for domain, expected in (("A", GREEN), ("B", (0, 0, 0))):
        out = tmp_path / f"out{domain}.png"
        todo = inference.plan(tmp_path / "in.png", out)
        assert inference.translate_files(net, todo, cfg, domain=domain, progress=False) == 1
        right = np.asarray(Image.open(out)).astype(int)[:, 10:]
        assert np.abs(right - expected).max() <= 3, domain


def test_prepare_with_rembg_in_worker_processes(tiny_model, tmp_path, monkeypatch):
    """Two spawned workers, each with its own session; the result equals the in-process one."""
    monkeypatch.setattr(prepare, "pool_pays", lambda tasks, background: True)
    monkeypatch.setattr(prepare, "available_cpus", lambda: 2)
    raw = tmp_path / "raw"
    for i, split in enumerate(prepare.SPLITS):
        (raw / split).mkdir(parents=True)
        img = half_white_half_black(64 + 2 * i)  # a distinct size per split: no duplicates
        img.save(raw / split / "a.png")
        img.transpose(Image.Transpose.ROTATE_180).save(raw / split / "b.png")
    outputs = {}
    for workers in (1, 2):
        cfg = DataConfig(image_size=16, background="rembg", rembg_model="u2net_custom",
                         background_color=list(GREEN), workers=workers, val_fraction=0)
        out = tmp_path / f"out{workers}"
        prepare.prepare_dataset(raw, out, cfg, progress=False)
        outputs[workers] = {p.relative_to(out).as_posix(): p.read_bytes()
                            for p in sorted(out.rglob("*.png"))}
    assert outputs[1] == outputs[2]
    assert len(outputs[2]) == 8
    a = np.asarray(Image.open(tmp_path / "out2" / "trainA" / "a.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "out2" / "trainA" / "b.png")).astype(int)
    assert np.abs(a[:, :6] - 255).max() <= 3 and np.abs(a[:, 10:] - GREEN).max() <= 3
    assert np.abs(b[:, :6] - GREEN).max() <= 3 and np.abs(b[:, 10:] - 255).max() <= 3
    with open(tmp_path / "out2" / MANIFEST_FILE, newline="") as handle:
        assert {row["status"] for row in csv.DictReader(handle)} == {"ok"}


def test_broken_model_fails_in_workers_with_one_line(tiny_model, tmp_path, monkeypatch):
    tiny_model.write_bytes(b"this is not an onnx file")
    monkeypatch.setattr(prepare, "pool_pays", lambda tasks, background: True)
    monkeypatch.setattr(prepare, "available_cpus", lambda: 2)
    raw = tmp_path / "raw"
    for split in prepare.SPLITS:
        (raw / split).mkdir(parents=True)
        half_white_half_black().save(raw / split / "a.png")
    cfg = DataConfig(image_size=16, background="rembg", rembg_model="u2net_custom", workers=2)
    with pytest.raises(DataError, match="u2net_custom.*cannot load"):
        prepare.prepare_dataset(raw, tmp_path / "out", cfg, progress=False)
    assert not (tmp_path / "out").exists()


def test_model_choice_errors(tiny_model, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="allowed: .*u2net"):
        fetch_model("no-such-model")
    with pytest.raises(ConfigError, match="remote service"):
        fetch_model("withoutbg")
    with pytest.raises(ConfigError, match="prompt"):
        fetch_model("sam")
    outside = build_tiny_u2net(tmp_path / "elsewhere" / "tiny.onnx")
    with pytest.raises(ConfigError, match="U2NET_HOME"):
        fetch_model("u2net_custom", str(outside))
    with pytest.raises(DataError, match="does not exist"):
        fetch_model("u2net_custom", str(tiny_model.with_name("missing.onnx")))
    monkeypatch.delenv(ENV_MODEL_PATH)
    with pytest.raises(ConfigError, match=ENV_MODEL_PATH):
        model_kwargs("u2net_custom")
    assert model_kwargs("u2net") == {}
    assert fetch_model("u2net_custom", str(tiny_model)) == str(tiny_model)
