"""Networks: shapes, ranges, receptive field, init, weight transfer."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cyclelab.errors import DataError
from cyclelab.models import build_discriminator, build_generator
from cyclelab.models.autoencoder import Autoencoder
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
