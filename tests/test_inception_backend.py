"""The FID network under ONNX Runtime (the CPU's default) computes TorchScript's features: same
regression values, same features within 1e-5 relative, exported once and cached by sha256."""

from __future__ import annotations

import numpy as np
import pytest

from cyclelab.metrics.inception import extract_features, load_inception, onnx_cache_path

pytest.importorskip("onnxruntime", reason="onnxruntime is a core dependency; not installed?")


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        ort_net = load_inception(backend="onnxruntime")
        exported = onnx_cache_path(ort_net.sha256)
        stamp = exported.stat().st_mtime_ns
        again = load_inception(backend="onnxruntime")
        assert exported.stat().st_mtime_ns == stamp  # the cached export was reused
    assert ort_net.backend == again.backend == "onnxruntime"
    return ort_net, load_inception(backend="torch")


def test_regression_value_of_an_all_zero_image(nets):
    ort_net, _ = nets
    features = extract_features(ort_net, np.zeros((1, 32, 32, 3), np.uint8), progress=False)
    # ../shared/ARCHITECTURE.md, "FID weights": the pinned TorchScript file fed -1 everywhere
    # gives features summing to 249.701925, argmax 271, measured on the file itself when the
    # design was written (test_fid checks the raw file against it): the exported ONNX graph
    # and our preprocessing must reproduce it.
    assert features.sum() == pytest.approx(249.701925, rel=1e-5)
    assert int(features.argmax()) == 271


def test_same_features_as_torchscript(nets):
    ort_net, torch_net = nets
    assert torch_net.backend == "torch"
    images = np.random.default_rng(0).integers(0, 256, (5, 40, 28, 3), dtype=np.uint8)
    got = extract_features(ort_net, images, batch_size=3, progress=False)
    want = extract_features(torch_net, images, batch_size=3, progress=False)
    assert got.shape == want.shape == (5, 2048)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_unknown_backend_is_a_config_error():
    from cyclelab.errors import ConfigError

    with pytest.raises(ConfigError, match="FID backend"):
        load_inception(backend="tensorrt")
