"""FID: weights verification, preprocessing, Inception features, Fréchet distance, stats files."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from cyclelab.errors import ConfigError, DataError
from cyclelab.metrics import fid, inception

# ---------------------------------------------------------------- weights


@pytest.fixture
def fresh_hash_cache():
    inception._sha256_cached.cache_clear()
    yield
    inception._sha256_cached.cache_clear()


class _ChannelMean(torch.nn.Module):
    """A stand-in FID network: the mean of each input channel (N×3 features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


@pytest.fixture
def tiny_weights(tmp_path):
    path = tmp_path / "tiny_net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation notice
        torch.jit.script(_ChannelMean()).save(str(path))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_user_weights_pinned_load_and_give_features(tiny_weights):
    path, sha = tiny_weights
    net = inception.load_inception(path, sha)
    assert net.sha256 == sha and net.path == path
    images = np.full((3, 8, 8, 3), 200, dtype=np.uint8)
    features = inception.extract_features(net, images, batch_size=2)
    assert features.dtype == np.float64 and features.shape == (3, 3)
    np.testing.assert_allclose(features, (200 - 128) / 128, rtol=1e-6)


def test_user_weights_unpinned_record_their_hash(tiny_weights):
    path, sha = tiny_weights
    assert inception.verify_weights(path) == (path, sha)


def test_user_weights_wrong_pin_is_one_line_config_error(tiny_weights):
    path, sha = tiny_weights
    with pytest.raises(ConfigError) as err:
        inception.verify_weights(path, "0" * 64)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and sha in message and "0" * 64 in message
    assert "eval.fid_weights" in message


def test_user_weights_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        inception.verify_weights(tmp_path / "nope.pt", "")


def test_default_weights_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(inception, "DEFAULT_WEIGHTS_PACKAGE", "no_such_package_cyclelab")
    with pytest.raises(DataError, match="make setup"):
        inception.verify_weights()


def test_default_weights_hash_mismatch(monkeypatch):
    monkeypatch.setattr(inception, "DEFAULT_WEIGHTS_SHA256", "f" * 64)
    with pytest.raises(DataError, match=f"expected {'f' * 64}; run `make setup`"):
        inception.verify_weights()


def test_pin_without_a_path_is_refused_unless_it_is_the_default():
    with pytest.raises(ConfigError, match="eval.fid_weights is empty"):
        inception.verify_weights("", "a" * 64)
    assert inception.verify_weights("", inception.DEFAULT_WEIGHTS_SHA256.upper())[1] == (
        inception.DEFAULT_WEIGHTS_SHA256)


def test_hash_is_computed_once_per_file_version(tmp_path, monkeypatch, fresh_hash_cache):
    calls = []
    real_sha256_file = inception.sha256_file
    monkeypatch.setattr(inception, "sha256_file",
                        lambda path: calls.append(path) or real_sha256_file(path))
    path = tmp_path / "w.pt"
    path.write_bytes(b"abc")
    first = inception.verify_weights(path)[1]
    assert inception.verify_weights(path)[1] == first
    assert len(calls) == 1
    path.write_bytes(b"abcd")  # a new size: the cache must not answer for the old content
    assert inception.verify_weights(path)[1] == hashlib.sha256(b"abcd").hexdigest()
    assert len(calls) == 2


# ---------------------------------------------------------------- preprocessing


def test_preprocess_scales_and_keeps_299_images_exact():
    images = torch.arange(256, dtype=torch.uint8).repeat(3 * 299 * 299 // 256 + 1)
    images = images[: 3 * 299 * 299].reshape(1, 3, 299, 299)
    out = inception.preprocess(images)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 299, 299)
    torch.testing.assert_close(out, (images.float() - 128) / 128, rtol=0, atol=0)
    assert out.min().item() == -1.0 and out.max().item() == 127 / 128


def test_preprocess_uses_tf1_sample_grid():
    # A 1×2 row [0, 255] up-sampled to 299: TF1 samples source x = 149 · 2/299 for column 149
    # (F.interpolate's half-pixel grid would sample x = 0.5 and give 127.5).
    images = torch.tensor([0, 255], dtype=torch.uint8).reshape(1, 1, 1, 2).repeat(1, 3, 1, 1)
    out = inception.preprocess(images)
    assert out.shape == (1, 3, 299, 299)
    expected = 255 * 149 * 2 / 299
    assert out[0, 0, 0, 149].item() == pytest.approx((expected - 128) / 128, abs=1e-6)
    assert out[0, 0, 0, 0].item() == -1.0 and out[0, 0, 0, 298].item() == 127 / 128


def _resize_like_nvidia(pixels: torch.Tensor) -> torch.Tensor:
    """The TF1 resize as NVIDIA's TorchScript Inception (StyleGAN2-ADA) writes it, in float64."""
    batch, channels, height, width = pixels.shape
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1 / width - 1 / 299
    theta[1, 2] += 1 / height - 1 / 299
    grid = torch.nn.functional.affine_grid(theta[None].repeat(batch, 1, 1),
                                           [batch, channels, 299, 299], align_corners=False)
    return torch.nn.functional.grid_sample(pixels.double(), grid, mode="bilinear",
                                           padding_mode="border", align_corners=False)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 17, 23), (1, 3, 400, 350)])
def test_resize_matches_nvidia_grid_sample_formulation(shape):
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, shape, generator=generator).float()
    ours = inception.resize_bilinear_tf1(pixels)
    # float32 source coordinates (as TF1) vs float64: ~1e-5 px, times gradients up to 255
    torch.testing.assert_close(ours.double(), _resize_like_nvidia(pixels), rtol=0, atol=0.01)


def test_to_nchw_accepts_both_layouts_and_rejects_others():
    nhwc = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    torch.testing.assert_close(inception.to_nchw_uint8(nhwc), torch.from_numpy(nchw))
    torch.testing.assert_close(inception.to_nchw_uint8(nchw), torch.from_numpy(nchw))
    assert inception.to_nchw_uint8(nhwc[0]).shape == (1, 3, 4, 5)
    read_only = nhwc.copy()
    read_only.flags.writeable = False  # as np.asarray(PIL image) returns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(inception.to_nchw_uint8(read_only), torch.from_numpy(nchw))
    with pytest.raises(TypeError):
        inception.to_nchw_uint8(nhwc.astype(np.float32))
    with pytest.raises(ValueError):
        inception.to_nchw_uint8(np.zeros((2, 4, 5), dtype=np.uint8))


# ---------------------------------------------------------------- the real network


@pytest.fixture(scope="module")
def net():
    return inception.load_inception(device="cpu")


def test_default_network_is_the_pinned_file(net):
    assert net.sha256 == inception.DEFAULT_WEIGHTS_SHA256
    # The byte count of the file that sha256 pins: a fact of that file, not of our code.
    assert net.path.name == "default_1.pt" and net.path.stat().st_size == 87_335_461


def test_all_zero_image_regression(net):
    """../shared/ARCHITECTURE.md, "FID weights": NVIDIA's TorchScript file (the sha256 pinned
    above) fed -1 everywhere gives features summing to 249.701925, argmax 271. The design
    measured that on the file itself, before this package existed, and the raw network is
    checked against it here, so the number does not come from our code; our pipeline must map
    an all-zero image to exactly that input."""
    raw = net.module(torch.full((1, 3, 299, 299), -1.0)).double().numpy()
    assert raw.sum() == pytest.approx(249.701925, rel=1e-5) and int(raw.argmax()) == 271
    features = inception.extract_features(net, np.zeros((1, 32, 32, 3), dtype=np.uint8))
    assert features.shape == (1, inception.FEATURE_DIM) and features.dtype == np.float64
    np.testing.assert_allclose(features, raw, rtol=1e-4, atol=1e-5 * np.abs(raw).max())
    assert features.sum() == pytest.approx(249.701925, rel=1e-4)


def test_layouts_batching_and_iterables_give_the_same_features(net):
    images = np.random.default_rng(0).integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    by_two = inception.extract_features(net, images, batch_size=2)
    nchw = inception.extract_features(net, torch.from_numpy(images).permute(0, 3, 1, 2))
    one_by_one = inception.extract_features(net, (img for img in images), batch_size=1)
    np.testing.assert_allclose(nchw, by_two, atol=1e-4)
    np.testing.assert_allclose(one_by_one, by_two, atol=1e-4)
    assert not np.allclose(by_two[0], by_two[1], atol=1e-2)  # different images, different features


def test_no_images_is_a_data_error(net):
    with pytest.raises(DataError, match="no images"):
        inception.extract_features(net, iter([]))


# ---------------------------------------------------------------- Fréchet distance


def _random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    factor = rng.normal(size=(dim, dim))
    return factor @ factor.T + 0.1 * np.eye(dim)


def test_identical_sets_give_zero():
    features = np.random.default_rng(1).normal(size=(60, 8))
    stats = fid.reference_stats(features)
    assert fid.fid_from_stats(stats, stats) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_gaussians_closed_form():
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    # |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2 = 5 + (1 + 1 + 6.25)
    assert fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(13.25)


def test_scalar_multiple_covariance_closed_form():
    sigma = _random_spd(np.random.default_rng(2), 6)
    mu = np.zeros(6)
    c = 2.25  # sqrt(c) = 1.5: tr = (1 + c - 2 sqrt(c)) tr S = 0.25 tr S
    expected = 0.25 * np.trace(sigma)
    assert fid.frechet_distance(mu, sigma, mu, c * sigma) == pytest.approx(expected, rel=1e-10)


def test_matches_scipy_sqrtm_on_random_spd():
    rng = np.random.default_rng(3)
    sigma1, sigma2 = _random_spd(rng, 20), _random_spd(rng, 20)
    mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(sigma1 + sigma2 - 2 * covmean)
    assert fid.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


def test_degenerate_covariances_match_the_nuclear_norm_identity():
    # N < D: both covariances are singular. With centred features A1, A2,
    # tr sqrt(S1 S2) = ||A1 A2^T||_* / sqrt((n1 - 1)(n2 - 1)), an independent route.
    rng = np.random.default_rng(4)
    feats1, feats2 = rng.normal(size=(5, 64)), rng.normal(size=(7, 64)) + 0.5
    stats1, stats2 = fid.reference_stats(feats1), fid.reference_stats(feats2)
    centred1, centred2 = feats1 - feats1.mean(0), feats2 - feats2.mean(0)
    nuclear = np.linalg.svd(centred1 @ centred2.T, compute_uv=False).sum() / np.sqrt(4 * 6)
    assert fid.trace_sqrt_product(stats1["sigma"], stats2["sigma"]) == pytest.approx(
        nuclear, rel=1e-9)
    value = fid.fid_from_stats(stats1, stats2)
    assert np.isfinite(value) and value > 64 * 0.25  # at least the mean shift |0.5|^2 * 64


def test_mismatched_shapes_and_too_few_images():
    with pytest.raises(ValueError, match="mismatched"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(DataError, match="at least 2 images"):
        fid.reference_stats(np.zeros((1, 4)))


def test_statistics_from_different_networks_are_refused():
    features = np.random.default_rng(5).normal(size=(4, 3))
    with pytest.raises(DataError, match="different networks"):
        fid.fid_from_stats(fid.reference_stats(features, "a" * 64),
                           fid.reference_stats(features, "b" * 64))


# ---------------------------------------------------------------- statistics files


def test_stats_round_trip_at_exactly_the_given_name(tmp_path):
    features = np.random.default_rng(6).normal(size=(5, 4))
    stats = fid.reference_stats(features, "c" * 64)
    target = tmp_path / "ref" / "stats_A"  # no .npz suffix: np.savez would append one
    fid.save_stats(target, stats)
    assert sorted(p.name for p in target.parent.iterdir()) == ["stats_A"]
    loaded = fid.load_stats(target)
    assert loaded["n"] == 5 and isinstance(loaded["n"], int)
    assert loaded["weights_sha256"] == "c" * 64
    np.testing.assert_array_equal(loaded["mu"], stats["mu"])
    np.testing.assert_array_equal(loaded["sigma"], stats["sigma"])
    np.testing.assert_array_equal(loaded["features"], features)


def test_load_stats_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        fid.load_stats(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=f"{garbage}: not a readable statistics file"):
        fid.load_stats(garbage)
    partial = tmp_path / "partial.npz"
    fid.save_stats(partial, {"mu": np.zeros(3)})
    with pytest.raises(DataError, match="lacks sigma, n"):
        fid.load_stats(partial)


def test_curve_scores_ssim_of_real_against_translated(tiny_weights):
    # seeds/000 Fig. 12: SSIM of real against fake every k epochs, beside FID/KID.
    from cyclelab.config import EvalConfig
    from cyclelab.metrics.translation import CurveScorer
    from cyclelab.runtime import make_runtime

    path, sha = tiny_weights
    net = inception.load_inception(path, sha)
    gen = torch.Generator().manual_seed(0)
    val_a, val_b = (torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=gen)
                    for _ in range(2))
    cfg = EvalConfig(metrics=["fid", "ssim"], batch_size=2)
    curve = CurveScorer(net, val_a, val_b, cfg)
    same = curve(torch.nn.Identity(), torch.nn.Identity(), make_runtime("cpu", "fp32"))
    assert set(same) == {"fid_A_to_B", "fid_B_to_A", "ssim_A_to_B", "ssim_B_to_A"}
    assert same["ssim_A_to_B"] == pytest.approx(1.0) and same["ssim_B_to_A"] == pytest.approx(1.0)
    class Negate(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -x

    flipped = curve(Negate(), Negate(), make_runtime("cpu", "fp32"))
    assert flipped["ssim_A_to_B"] < 0.5
