"""Exported generators (ONNX, TorchScript) compute what the PyTorch generator computes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cyclelab import inference
from cyclelab.config import ModelConfig
from cyclelab.errors import DataError
from cyclelab.models.build import build_generator
from cyclelab.models.init import load_weights

SIZE = 32
TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "input_skip"])
def generator(request):
    torch.manual_seed(0)
    net = build_generator(ModelConfig(ngf=4, n_blocks=1, input_skip=request.param)).eval()
    with torch.no_grad():  # away from the N(0, 0.02) init, so outputs are not all near 0
        for param in net.parameters():
            param.mul_(20.0)
    return net


@pytest.fixture(scope="module")
def images_m11():
    # A batch size other than the export example's 1: the batch dimension must stay dynamic.
    return torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1


def _expected(net, images_m11) -> np.ndarray:
    with torch.no_grad():
        out = net(images_m11).numpy()
    assert out.std() > 0.05  # a meaningful comparison, not tanh(0) everywhere
    return out


def test_onnx_runtime_matches_pytorch(generator, images_m11, tmp_path):
    path = inference.export(generator, "onnx", tmp_path / "g.onnx", SIZE)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [inference.INPUT_NAME]
    (got,) = session.run(None, {inference.INPUT_NAME: images_m11.numpy()})
    assert got.shape == (3, 3, SIZE, SIZE)
    assert np.abs(got - _expected(generator, images_m11)).max() < TOLERANCE


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_matches_pytorch(generator, images_m11, tmp_path):
    path = inference.export(generator, "torchscript", tmp_path / "g.pt", SIZE)
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        got = loaded(images_m11).numpy()
    assert np.abs(got - _expected(generator, images_m11)).max() < TOLERANCE


def test_export_refuses_a_folder_and_leaves_no_partial_file(generator, tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        inference.export(generator, "torchscript", tmp_path, SIZE)
    assert list(tmp_path.iterdir()) == []


class _Payload:
    """Anything that is not a tensor: unpickling it would run arbitrary code in general."""


def test_weights_load_with_weights_only(tmp_path, generator):
    path = tmp_path / "G_ab.pt"
    torch.save(generator.state_dict(), path)
    net = load_weights(build_generator(ModelConfig(ngf=4, n_blocks=1)), path, "train@x")
    for key, value in net.state_dict().items():
        assert torch.equal(value, generator.state_dict()[key])
    state = dict(generator.state_dict(), extra=_Payload())
    torch.save(state, path)
    # weights_only=True refuses the pickled object; the user sees one line naming the file.
    with pytest.raises(DataError, match="corrupt or not a weights file \\(UnpicklingError\\)"):
        load_weights(build_generator(ModelConfig(ngf=4, n_blocks=1)), path, "train@x")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_a_unet_translates_and_exports_through_the_cli(tmp_path, tiny_raw, monkeypatch, capsys):
    """The U-Net's depth follows data.image_size: translate and export rebuild it at that size
    (32 px: five halvings), and the exported files compute what the trained network does."""
    from PIL import Image

    from cyclelab import cli, config, paths
    from tests.conftest import write_params

    tiny_raw["model"] = {"generator": "unet", "ngf": 4}
    write_params(tmp_path / "params.yaml", tiny_raw)
    cfg = config.from_dict(tiny_raw)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    trained = build_generator(cfg.model, SIZE).eval()
    with torch.no_grad():
        for param in trained.parameters():
            param.mul_(20.0)
    model_dir = paths.model_dir("baseline", 0)
    model_dir.mkdir(parents=True)
    for name in ("G_ab", "G_ba"):
        torch.save(trained.state_dict(), model_dir / f"{name}.pt")
    img_uint8 = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(img_uint8).save(tmp_path / "in.png")

    assert cli.main(["translate", "--variant", "baseline", "--direction", "AtoB", "in.png",
                     "out.png"]) == 0
    batch_uint8 = torch.from_numpy(img_uint8).permute(2, 0, 1)[None]
    expected = inference.translate_batch(trained, batch_uint8)
    got = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(got, expected[0].permute(1, 2, 0).numpy())

    images_m11 = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for fmt, name in (("torchscript", "g.pt"), ("onnx", "g.onnx")):
        assert cli.main(["export", "--variant", "baseline", "--direction", "BtoA",
                         "--format", fmt, name]) == 0
    with torch.no_grad():
        scripted = torch.jit.load(str(tmp_path / "g.pt"))(images_m11).numpy()
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    (from_onnx,) = session.run(None, {inference.INPUT_NAME: images_m11.numpy()})
    want = _expected(trained, images_m11)
    assert np.abs(scripted - want).max() < TOLERANCE
    assert np.abs(from_onnx - want).max() < TOLERANCE


def test_translate_reads_a_file_as_prepare_does_with_pad_only(tmp_path):
    """``translate`` pads a 28-px image with ``data.pad_color`` as prepare does, not with the
    letterbox colour of ``pad`` (data.background_color, white by default)."""
    import numpy as np
    from PIL import Image

    from cyclelab import config, inference

    source = tmp_path / "digit.png"
    Image.fromarray(np.full((28, 28, 3), 200, np.uint8)).save(source)
    cfg = config.from_dict({"data": {"resize": "pad_only", "image_size": 32}}).data
    img = np.asarray(inference.read_image(source, cfg, lambda im: im))
    assert img.shape == (32, 32, 3)
    assert (img[:2] == 0).all() and (img[2:30, 2:30] == 200).all()
