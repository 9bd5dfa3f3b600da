"""``python -m cyclelab translate / export``: a trained run used outside the pipeline."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cyclelab import cli, config, inference, paths
from cyclelab.data.background import make_background_remover
from cyclelab.errors import DataError
from cyclelab.models.build import build_generator
from tests.conftest import write_params

SEEDS = [3, 5]  # weights exist for the first only


@pytest.fixture
def project(tmp_path, tiny_raw, monkeypatch):
    """A project folder: params.yaml and the trained generators of baseline, seed 3."""
    tiny_raw["study"] = {"seeds": SEEDS}
    write_params(tmp_path / "params.yaml", tiny_raw)
    cfg = config.from_dict(tiny_raw)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model_dir = paths.model_dir("baseline", SEEDS[0])
    model_dir.mkdir(parents=True)
    for name in ("G_ab", "G_ba"):
        net = build_generator(cfg.variant("baseline")[1])
        with torch.no_grad():  # past the N(0, 0.02) init, so the translation is not flat grey
            for param in net.parameters():
                param.mul_(20.0)
        torch.save(net.state_dict(), model_dir / f"{name}.pt")
    return tmp_path, cfg


def _inputs(folder):
    """Three images of different sizes and modes, and a file that is not an image."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / "a.jpg")
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), "L").save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (50, 50, 4), dtype=np.uint8), "RGBA").save(
        folder / "c.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _expected(cfg, path, direction="AtoB") -> np.ndarray:
    net = inference.load_generator(cfg.variant("baseline")[1], "baseline", SEEDS[0], direction,
                                   image_size=cfg.data.image_size)
    img = inference.read_image(path, cfg.data, make_background_remover("none"))
    batch = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None]
    return inference.translate_batch(net, batch)[0].permute(1, 2, 0).numpy()


def test_translate_a_folder_end_to_end(project):
    tmp, cfg = project
    source = _inputs(tmp / "in")
    done = subprocess.run(
        [sys.executable, "-m", "cyclelab", "translate", "--variant", "baseline",
         "--direction", "AtoB", "in", "out"],
        cwd=tmp, capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert "translate: 3 image(s) AtoB with baseline seed 3 -> out" in done.stdout
    assert "skipped 1: notes.txt (not an image" in done.stdout
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    for name in ("a.jpg", "b.png", "c.png"):
        with Image.open(tmp / "out" / f"{name[0]}.png") as img:
            assert (img.mode, img.size) == ("RGB", (32, 32))
            got = np.asarray(img).astype(int)
        expected = _expected(cfg, source / name).astype(int)
        assert np.abs(got - expected).max() <= 1  # a rounding step apart at most (threads)
        assert got.std() > 5  # a real translation, not one flat colour


def test_translate_one_file_to_a_file_and_into_a_folder(project, capsys):
    tmp, cfg = project
    source = _inputs(tmp / "in") / "a.jpg"
    assert cli.main(["translate", "--variant", "baseline", "--direction", "BtoA",
                     "--seed", "3", str(source), "one.jpg"]) == 0
    with Image.open(tmp / "one.jpg") as img:
        assert (img.format, img.size) == ("JPEG", (32, 32))
    assert cli.main(["translate", "--variant", "baseline", "--direction", "BtoA",
                     str(source), "outdir/"]) == 0
    with Image.open(tmp / "outdir" / "a.png") as img:
        np.testing.assert_array_equal(np.asarray(img), _expected(cfg, source, "BtoA"))
    assert "-> outdir/a.png" in capsys.readouterr().out


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_missing_model_names_the_path_and_the_fix(project, capsys):
    tmp, _ = project
    _inputs(tmp / "in")
    assert cli.main(["translate", "--variant", "baseline", "--seed", "5", "--direction", "AtoB",
                     "in", "out"]) == 2
    err = _error_line(capsys)
    assert err.startswith("cyclelab translate: error: data/models/baseline/s5/G_ab.pt: no "
                          "trained model")
    assert "run `dvc repro train@baseline-5`" in err
    assert not (tmp / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--seed", "9"], "--seed 9: not in study.seeds [3, 5]"),
    (["--variant", "nope"], "--variant nope: no such variant"),
    (["--params", "absent.yaml"], "absent.yaml"),
    (["--batch-size", "0"], "--batch-size: got 0, must be >= 1"),
])
def test_user_mistakes_are_one_line_and_exit_2(project, capsys, argv, message):
    tmp, _ = project
    _inputs(tmp / "in")
    base = {"--variant": "baseline", "--direction": "AtoB"}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    args = ["translate", *[x for kv in base.items() for x in kv], "in", "out"]
    assert cli.main(args) == 2
    assert message in _error_line(capsys)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_torchscript_through_the_cli(project, capsys):
    tmp, cfg = project
    assert cli.main(["export", "--variant", "baseline", "--direction", "AtoB",
                     "--format", "torchscript", "g_ab.pt"]) == 0
    assert "input and output float N×3×32×32 in [-1, 1]" in capsys.readouterr().out
    net = inference.load_generator(cfg.variant("baseline")[1], "baseline", SEEDS[0], "AtoB",
                                   image_size=cfg.data.image_size)
    images_m11 = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        got = torch.jit.load(str(tmp / "g_ab.pt"))(images_m11)
        assert (got - net(images_m11)).abs().max() < 1e-4


def test_plan_names_and_refusals(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x.jpg", "x.png", ".hidden.png"):
        (folder / name).write_bytes(b"")
    todo = inference.plan(folder, tmp_path / "out")
    assert [p.name for p in todo.sources] == ["x.jpg", "x.png"]
    names = [p.name for p in todo.targets]
    assert len(set(names)) == 2 and all(n.startswith("x-") and n.endswith(".png") for n in names)
    with pytest.raises(DataError, match="not an image file name"):
        inference.plan(folder / "x.jpg", tmp_path / "result")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(DataError, match="exists and is not a folder"):
        inference.plan(folder, tmp_path / "file.png")
    with pytest.raises(DataError, match="no such file or folder"):
        inference.plan(tmp_path / "absent", tmp_path / "out")


SIGTERM_SCRIPT = """
import os, signal, sys
from cyclelab import cli

def killed(cfg, args):
    os.kill(os.getpid(), signal.SIGTERM)
    raise SystemExit("SIGTERM was not handled")

cli._translate = killed
sys.exit(cli.main(["translate", "--variant", "baseline", "--direction", "AtoB", "a", "b"]))
"""


def test_sigterm_exits_as_a_stage_does(project):
    """One exit policy for stages and commands: SIGTERM gives 128 + 15 and one line (on
    fbf70fa the command died of the signal: -15)."""
    root, _ = project
    proc = subprocess.run([sys.executable, "-c", SIGTERM_SCRIPT], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip() == ("cyclelab translate: interrupted (SIGTERM); complete outputs "
                                   "were left as they were, partial ones removed")
