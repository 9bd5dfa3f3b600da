"""Networks: shapes, ranges, receptive field, init, weight transfer."""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import pytest
import torch

from cyclelab.errors import DataError
from cyclelab.models.autoencoder import Autoencoder
from cyclelab.models.build import build_discriminator, build_generator
from cyclelab.models.discriminators import PatchDiscriminator
from cyclelab.models.init import load_matching


@pytest.mark.parametrize("size", [32, 48, 64])
def test_generator_keeps_shape_and_range(tiny_params, size):
    G = build_generator(tiny_params.model)
    out = G(torch.rand(2, 3, size, size) * 2 - 1)
    assert out.shape == (2, 3, size, size)
    assert out.min() >= -1 and out.max() <= 1


def test_resnet_blocks_are_configurable(tiny_params):
    small = build_generator(tiny_params.model)
    big = build_generator(dataclasses.replace(tiny_params.model, n_blocks=3))
    n = sum(p.numel() for p in small.parameters())
    # Each block: two 3x3 convs (with bias) at 4 * ngf = 32 channels.
    per_block = 2 * (32 * 32 * 9 + 32)
    assert sum(p.numel() for p in big.parameters()) - n == 2 * per_block


def test_patchgan_receptive_field_is_70():
    # Without normalisation: instance norm mixes every position into every output.
    D = PatchDiscriminator(ndf=4, n_layers=3, norm="none")
    x = torch.zeros(1, 3, 256, 256, requires_grad=True)
    out = D(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1)).sum(dim=1)).flatten()
    assert rows.max() - rows.min() + 1 == 70


def test_discriminator_outputs_patch_map(tiny_params):
    out = build_discriminator(tiny_params.model)(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 1, 2, 2)


def test_normal_init_std(tiny_params):
    G = build_generator(dataclasses.replace(tiny_params.model, ngf=32))
    conv = next(m for m in G.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.numel()
                > 5000)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert conv.bias is None or torch.all(conv.bias == 0)


def test_autoencoder_reconstructs_shape_and_transfers_generator(tiny_params):
    G = build_generator(tiny_params.model)
    ae = Autoencoder(G, image_size=32, channels=8, latent_dim=4)
    assert ae(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    fresh = build_generator(tiny_params.model)
    load_matching(fresh, ae.generator.state_dict(), "ae")
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(fresh(x), ae.generator(x))


def test_autoencoder_odd_size(tiny_params):
    G = build_generator(tiny_params.model)
    assert Autoencoder(G, image_size=40, channels=4, latent_dim=4)(
        torch.zeros(1, 3, 40, 40)).shape == (1, 3, 40, 40)


def test_load_matching_refuses_other_architecture(tiny_params):
    G = build_generator(tiny_params.model)
    other = build_generator(dataclasses.replace(tiny_params.model, ngf=4))
    with pytest.raises(DataError, match="weights do not fit"):
        load_matching(G, other.state_dict(), "x.pt")


def test_load_weights_names_the_missing_file_and_its_stage(tiny_params, tmp_path):
    from cyclelab.models.init import load_weights

    G = build_generator(tiny_params.model)
    with pytest.raises(DataError, match=r"G_ab.pt: missing; run train@baseline first"):
        load_weights(G, tmp_path / "G_ab.pt", "train@baseline")
    torch.save(G.state_dict(), tmp_path / "G_ab.pt")
    other = load_weights(build_generator(tiny_params.model), tmp_path / "G_ab.pt", "x")
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(other(x), G(x))


# --- every network of the seed reports (issue 7) -------------------------------------------

from cyclelab import config  # noqa: E402
from cyclelab.models.build import count_parameters  # noqa: E402
from cyclelab.models.init import ae_domain, init_weights  # noqa: E402
from cyclelab.models.receptive import field_note, paper_ratio_layers, receptive_field  # noqa: E402

TINY_NETS = config.ModelConfig(ngf=4, ndf=4, n_blocks=1)


def test_registries_match_the_schema():
    from cyclelab.models.build import DISCRIMINATORS, GENERATORS

    assert tuple(GENERATORS) == config.GENERATORS
    assert tuple(DISCRIMINATORS) == config.DISCRIMINATORS


@pytest.mark.parametrize("size", [32, 64, 128, 256])
@pytest.mark.parametrize("name", config.GENERATORS)
def test_every_generator_builds_runs_and_learns_at_each_size(name, size):
    G = build_generator(dataclasses.replace(TINY_NETS, generator=name), size)
    real = torch.rand(1, 3, size, size) * 2 - 1
    fake = G(real)
    assert fake.shape == real.shape
    assert fake.min() >= -1 and fake.max() <= 1
    fake.mean().backward()
    grads = [p.grad for p in G.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


@pytest.mark.parametrize("size", [32, 64, 128, 256])
@pytest.mark.parametrize("name", config.DISCRIMINATORS)
def test_every_discriminator_builds_runs_and_learns_at_each_size(name, size):
    n_layers = 1 if name == "patch" and size < 48 else 3  # the schema refuses 3 at 32 px
    D = build_discriminator(dataclasses.replace(TINY_NETS, discriminator=name,
                                                n_layers_d=n_layers))
    img = torch.rand(2, 3, size, size) * 2 - 1
    logits = D(img)
    assert logits.dim() == 4 and logits.shape[:2] == (2, 1)
    features = D.features(img)
    assert features and all(f.shape[0] == 2 for f in features)
    loss = logits.mean() + sum(f.mean() for f in features)
    if name == "dual_head":
        loss = loss + D.forward_all(img)["global_"].mean()
    loss.backward()
    assert all(p.grad is not None for p in D.parameters())


@pytest.mark.parametrize(("name", "size", "side"), [
    ("patch", 256, 30), ("pixel", 256, 256), ("random_crop", 256, 2), ("seed001", 256, 16),
    ("dual_head", 256, 16), ("seed001", 32, 2), ("dual_head", 32, 2), ("plain", 256, 1),
    ("plain", 32, 1)])
def test_discriminator_maps_have_the_reported_size(name, size, side):
    # seed001 and dual_head: 16x16 at 256 px, as seeds 001 and 004 state.
    D = build_discriminator(dataclasses.replace(TINY_NETS, discriminator=name))
    assert D(torch.zeros(1, 3, size, size)).shape == (1, 1, side, side)


def test_dual_head_returns_patch_global_and_features():
    D = build_discriminator(dataclasses.replace(TINY_NETS, discriminator="dual_head"))
    out = D.forward_all(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert out["patch"].shape == (3, 1, 4, 4)
    assert out["global_"].shape == (3, 1)
    assert [f.shape[1] for f in out["features"]] == [4, 8, 16, 32]
    # Spectral norm: once its power iteration (one step per training forward) has converged,
    # each trunk convolution's largest singular value is 1.
    with torch.no_grad():
        for _ in range(30):
            D(torch.zeros(1, 3, 32, 32))
    conv = D.trunk[1][0]
    sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, rel=0.02)


def test_random_crop_discriminator_judges_one_crop_per_image():
    D = build_discriminator(dataclasses.replace(TINY_NETS, discriminator="random_crop",
                                                d_crop=9))
    torch.manual_seed(0)
    crops = D.random_crop(torch.arange(2 * 3 * 32 * 32, dtype=torch.float).view(2, 3, 32, 32))
    assert crops.shape == (2, 3, 9, 9)
    assert crops[0, 0, 0, 0] != crops[1, 0, 0, 0] - 3 * 32 * 32  # each image its own window
    assert len(D.patch.model) == 6  # seed 003: three convolutions


def resnet_count(ngf: int, n_blocks: int) -> int:
    """The official ResNet generator, instance norm (no affine, so every conv has a bias):
    c7s1-ngf, two stride-2 3x3 convs, n_blocks of two 3x3 convs at 4 ngf, two transposed
    3x3 convs, c7s1-3."""
    def conv(cin, cout, k):
        return cin * cout * k * k + cout
    return (conv(3, ngf, 7) + conv(ngf, 2 * ngf, 3) + conv(2 * ngf, 4 * ngf, 3)
            + n_blocks * 2 * conv(4 * ngf, 4 * ngf, 3)
            + conv(4 * ngf, 2 * ngf, 3) + conv(2 * ngf, ngf, 3) + conv(ngf, 3, 7))


def unet_count(ngf: int, num_downs: int) -> int:
    """The official U-Net with batch norm (2 parameters per channel; 4x4 convs without bias
    but the last): at each level a down conv outer -> inner, its norm, an up conv from the
    concatenated 2 x inner back to outer and its norm; the innermost level's up conv takes
    inner channels only and its down conv has no norm; the outermost has no norms."""
    def conv(cin, cout):
        return cin * cout * 16
    inner = 8 * ngf
    levels = [(ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)]
    levels += [(inner, inner)] * (num_downs - 5)
    total = conv(3, ngf) + conv(2 * ngf, 3) + 3  # outermost: in 3 -> ngf, out 2 ngf -> 3 + bias
    total += sum(conv(o, i) + 2 * i + conv(2 * i, o) + 2 * o for o, i in levels)
    return total + conv(inner, inner) + conv(inner, inner) + 2 * inner  # innermost


def patch_count(ndf: int, n_layers: int) -> int:
    """The official PatchGAN, instance norm: 4x4 convs with bias, 3 -> ndf, then doubling up to
    8 ndf for n_layers more, then one logit."""
    widths = [3] + [ndf * min(2 ** i, 8) for i in range(n_layers + 1)] + [1]
    return sum(cin * cout * 16 + cout for cin, cout in pairwise(widths))


def test_reference_parameter_counts():
    """The counts follow from the layer formulas above; the official code prints the same
    (ResNet-9 11.378 M, unet_256 54.414 M, 70x70 PatchGAN 2.765 M) and seeds/000 reports
    about 4.3 M for its 3-block generator."""
    from cyclelab.models.build import DISCRIMINATORS, GENERATORS

    def n_params(cfg, size=None):  # uninitialised, on the meta device: shapes only
        with torch.device("meta"):
            return count_parameters(GENERATORS[cfg.generator](cfg, size))

    assert resnet_count(64, 9) == 11_378_179 and patch_count(64, 3) == 2_764_737
    assert unet_count(64, 8) == 54_413_955
    big = config.ModelConfig(ngf=64, ndf=64, n_blocks=9)
    assert n_params(big) == resnet_count(64, 9)
    unet = dataclasses.replace(big, generator="unet", norm="batch")
    assert n_params(unet, 256) == unet_count(64, 8)
    assert n_params(unet, 128) == unet_count(64, 7)  # one level less at 128 px
    with torch.device("meta"):
        assert count_parameters(DISCRIMINATORS["patch"](big)) == patch_count(64, 3)
    # The generator of seeds/000 (ngf 64, 3 blocks).
    assert n_params(dataclasses.replace(big, n_blocks=3)) == resnet_count(64, 3)
    assert round(resnet_count(64, 3) / 1e6, 1) == 4.3


def _probe_field(D, size: int) -> int:
    """Brute force: rows of the input whose gradient reaches the centre output cell."""
    x = torch.zeros(1, 3, size, size, requires_grad=True)
    out = D(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1)).sum(dim=1)).flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(("name", "n_layers"), [
    ("patch", 1), ("patch", 2), ("patch", 3), ("pixel", 3), ("seed001", 3), ("seed001", 1),
    ("dual_head", 3), ("dual_head", 2)])
def test_receptive_field_matches_a_gradient_probe(name, n_layers):
    # Without normalisation (instance norm mixes every position into every output) and with
    # positive weights (no chance cancellation at the field's edge).
    cfg = dataclasses.replace(TINY_NETS, discriminator=name, n_layers_d=n_layers, norm="none",
                              ndf=2)
    D = build_discriminator(cfg)
    with torch.no_grad():
        for p in D.parameters():
            p.uniform_(0.01, 0.1)
    assert receptive_field(D) == _probe_field(D, 256)


def test_random_crop_field_is_clipped_to_the_crop():
    D = build_discriminator(dataclasses.replace(TINY_NETS, discriminator="random_crop",
                                                d_crop=9))
    assert receptive_field(D.patch) == 16
    assert receptive_field(D) == 9


def test_patch_field_note_names_the_paper_ratio_depth():
    cfg = config.ModelConfig()
    assert receptive_field(build_discriminator(cfg)) == 70
    note = field_note(cfg, 32)
    assert "receptive field 70 px >= image 32 px" in note
    assert "n_layers_d=1 (16 px)" in note
    assert field_note(cfg, 256) is None
    assert [paper_ratio_layers(cfg, s) for s in (32, 64, 128, 256, 512)] == [1, 1, 2, 3, 4]


def test_ae_init_from_maps_generators_to_domains():
    assert (ae_domain("G_ab", "target"), ae_domain("G_ba", "target")) == ("B", "A")
    assert (ae_domain("G_ab", "source"), ae_domain("G_ba", "source")) == ("A", "B")


def test_load_matching_counts_every_missing_tensor(tiny_params):
    G = build_generator(tiny_params.model)
    state = G.state_dict()
    partial = dict(list(state.items())[:-2])
    with pytest.raises(DataError, match=rf"2 of {len(state)} tensors missing"):
        load_matching(build_generator(tiny_params.model), partial, "gen.pt")


def test_init_weights_reaches_spectral_norm_weights():
    D = build_discriminator(dataclasses.replace(TINY_NETS, discriminator="dual_head"))
    init_weights(D, "normal", 0.5)
    raw = D.trunk[0][0].parametrizations.weight.original
    assert raw.std().item() == pytest.approx(0.5, rel=0.3)


def test_dropout_is_configurable():
    G = build_generator(dataclasses.replace(TINY_NETS, dropout=0.5))
    assert any(isinstance(m, torch.nn.Dropout) for m in G.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in build_generator(TINY_NETS).modules())


def test_network_summary_for_reports():
    from cyclelab.models.build import network_summary

    line = network_summary(config.ModelConfig(), 32)
    # The defaults (ngf 16, 3 blocks; ndf 16, 3 layers) by the formulas above.
    assert (resnet_count(16, 3), patch_count(16, 3)) == (272_515, 175_089)
    assert line.startswith(f"generator resnet ({resnet_count(16, 3):,} parameters), "
                           f"discriminator patch ({patch_count(16, 3):,} parameters, "
                           "receptive field 70 px of 32 px)")
    assert "n_layers_d=1 (16 px) keeps the PatchGAN paper's ratio" in line
    assert "judges the whole image" not in network_summary(config.ModelConfig(), 256)


@pytest.mark.parametrize("name", config.GENERATORS)
def test_leaky_relu_generators_keep_the_weights_and_change_the_function(name):
    """model.activation_g: leaky_relu (seeds/003) turns every ReLU layer of every generator
    family into LeakyReLU(0.2) and nothing else: the same weights, another output."""
    relu_cfg = dataclasses.replace(TINY_NETS, generator=name)
    torch.manual_seed(0)
    relu = build_generator(relu_cfg, 32)
    torch.manual_seed(0)
    leaky = build_generator(dataclasses.replace(relu_cfg, activation_g="leaky_relu"), 32)
    assert not any(isinstance(m, torch.nn.ReLU) for m in leaky.modules())
    slopes = {m.negative_slope for m in leaky.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.2}
    assert sum(isinstance(m, torch.nn.ReLU) for m in relu.modules()) > 0
    for a, b in zip(relu.state_dict().values(), leaky.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert not torch.allclose(relu(x), leaky(x))


@pytest.mark.parametrize("name", config.GENERATORS)
def test_input_skip_adds_the_change_to_the_input_in_every_family(name):
    """model.input_skip: the same weights and state-dict keys; the plain generator's output
    tanh(h) becomes tanh(atanh(x) + h), checked against the plain network's own h."""
    plain_cfg = dataclasses.replace(TINY_NETS, generator=name)
    torch.manual_seed(0)
    plain = build_generator(plain_cfg, 32)
    torch.manual_seed(0)
    skip = build_generator(dataclasses.replace(plain_cfg, input_skip=True), 32)
    assert list(plain.state_dict()) == list(skip.state_dict())
    for a, b in zip(plain.state_dict().values(), skip.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not any(isinstance(m, torch.nn.Tanh) for m in skip.modules())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    h = torch.atanh(plain(x).double())
    expected = torch.tanh(torch.atanh(x.double().clamp(-1 + 1e-3, 1 - 1e-3)) + h)
    out = skip(x)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    out.mean().backward()
    assert all(p.grad is not None for p in skip.parameters())


def test_input_skip_refuses_a_family_without_the_base(monkeypatch):
    """A generator family added as a plain nn.Module cannot add its change to the input: one
    line naming it and the fix, not an AttributeError."""
    from cyclelab.models import build

    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Tanh())
    monkeypatch.setitem(build.GENERATORS, "resnet", lambda cfg, size: plain)
    with pytest.raises(ValueError, match="generator 'resnet' is not an ImageGenerator .*"
                                         "set input_skip: false"):
        build_generator(dataclasses.replace(TINY_NETS, input_skip=True), 32)
    assert build_generator(TINY_NETS, 32) is plain


def test_input_skip_with_no_change_returns_the_input():
    """h = 0 is doing nothing: every grey level, the saturated 0 and 255 included, comes back
    within a quarter level; the plain generator returns grey (tanh(0) = 0)."""
    from cyclelab.models.layers import ImageGenerator

    class Zero(ImageGenerator):
        def __init__(self):
            super().__init__()
            conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            torch.nn.init.zeros_(conv.weight)
            torch.nn.init.zeros_(conv.bias)
            self.model = torch.nn.Sequential(conv, torch.nn.Tanh())

    x = (torch.arange(256.0) / 127.5 - 1).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(Zero()(x), torch.zeros_like(x))
    assert (Zero().skip_input()(x) - x).abs().max() * 127.5 < 0.25
    with pytest.raises(ValueError, match="exactly one final tanh, found 2"):
        two = Zero()
        two.model.append(torch.nn.Tanh())
        two.skip_input()


@pytest.mark.parametrize("name", config.DISCRIMINATORS)
def test_reflect_padding_discriminators_pad_by_reflection(name):
    """model.padding_d: reflect (seeds/003) makes every padded convolution reflect; with the
    same weights the logits change (the border differs) and keep their shape."""
    cfg = dataclasses.replace(TINY_NETS, discriminator=name, n_layers_d=2)
    torch.manual_seed(0)
    zeros = build_discriminator(cfg)
    torch.manual_seed(0)
    reflect = build_discriminator(dataclasses.replace(cfg, padding_d="reflect"))
    padded = [m for m in reflect.modules()
              if isinstance(m, torch.nn.Conv2d) and any(m.padding)]
    if name in ("pixel", "seed001"):  # 1x1, and 2x2 stride-2 convolutions: nothing to pad
        assert padded == []
        return
    assert padded and all(m.padding_mode == "reflect" for m in padded)
    assert all(m.padding_mode == "zeros" for m in zeros.modules()
               if isinstance(m, torch.nn.Conv2d))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    a, b = zeros(x), reflect(x)
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_plain_discriminator_gives_one_logit_per_image_and_says_so():
    from cyclelab.models.build import network_summary

    cfg = dataclasses.replace(TINY_NETS, discriminator="plain", n_layers_d=2)
    D = build_discriminator(cfg)
    for size in (32, 48):
        assert D(torch.rand(3, 3, size, size)).shape == (3, 1, 1, 1)
    assert "one output per image" in network_summary(cfg, 32)
