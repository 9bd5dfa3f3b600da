"""Building blocks shared by the generators, discriminators and the autoencoder."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

NORM_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    # Instance norm without affine parameters, as in the CycleGAN paper's code.
    "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    "none": lambda channels: nn.Identity(),
}


def norm_layer(name: str) -> Callable[[int], nn.Module]:
    """The normalisation layer factory registered as ``name`` (``model.norm``)."""
    return NORM_LAYERS[name]


def uses_bias(norm: str) -> bool:
    """Convolutions before an affine-free norm need their own bias (the paper's code)."""
    return norm != "batch"


def upsample(in_channels: int, out_channels: int, kind: str = "transpose", *, bias: bool = True,
             kernel: int = 3) -> list[nn.Module]:
    """Twice the size (``model.upsample``). ``transpose``: the family's stride-2 transposed
    convolution (``kernel`` 3 with output padding, the ResNet generator's; 4, the U-Net's).
    ``resize_conv``: nearest-neighbour resize, then a reflection-padded 3x3 convolution: every
    output pixel gets the same number of kernel taps, so no checkerboard (Odena et al. 2016,
    "Deconvolution and Checkerboard Artifacts"; recommended by the official CycleGAN
    maintainers)."""
    if kind == "resize_conv":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                nn.Conv2d(in_channels, out_channels, 3, bias=bias)]
    if kind != "transpose":
        # The schema refuses other names first (model.upsample); this guards direct callers.
        raise ValueError(f"upsample {kind!r}: not an up-sampling kind (see model.upsample)")
    if kernel == 4:
        return [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)]
    return [nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=2, padding=kernel // 2,
                               output_padding=1, bias=bias)]


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a skip connection (Johnson et al.)."""

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
            nn.ReLU(True),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
        )

    def forward(self, x):  # noqa: D102
        return x + self.body(x)


class SqueezeExcitation(nn.Module):
    """Squeeze-and-Excitation (Hu et al. 2018): global average pool, bottleneck MLP, sigmoid
    gates that rescale each channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1),
                                  nn.ReLU(True), nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x):  # noqa: D102
        return x * self.gate(x)


class ChannelAttention(nn.Module):
    """CBAM's channel attention (Woo et al. 2018): one shared MLP on the max- and the
    average-pooled features, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x):  # noqa: D102
        avg = self.mlp(torch.mean(x, dim=(2, 3), keepdim=True))
        peak = self.mlp(torch.amax(x, dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM's spatial attention: a 7x7 convolution over the channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):  # noqa: D102
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(stats))


class CBAM(nn.Sequential):
    """Convolutional Block Attention Module: channel attention, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__(ChannelAttention(channels, reduction), SpatialAttention())


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): every position attends to every other one;
    ``gamma`` starts at 0 so the block begins as the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):  # noqa: D102
        n, c, h, w = x.shape
        tokens = [f(x).flatten(2).transpose(1, 2).unsqueeze(1)    # N x 1 x HW x channels
                  for f in (self.query, self.key, self.value)]
        # softmax(q k^T) v without the 1/sqrt(d) of transformers, as SAGAN; the fused kernel
        # never holds the HW x HW matrix at once.
        out = F.scaled_dot_product_attention(*tokens, scale=1.0)
        return x + self.gamma * out.squeeze(1).transpose(1, 2).reshape(n, c, h, w)


class ImageGenerator(nn.Module):
    """A generator whose ``model`` maps an image in [-1, 1] to one of the same range through a
    final tanh. ``skip_input()`` makes it add its change to the input instead of drawing the
    image anew (``model.input_skip``): the last convolution's output ``h`` becomes an offset in
    tanh's pre-activation space, ``out = tanh(atanh(x) + h)``, so ``h = 0`` returns the input
    (doing nothing) and the network only learns what differs between the domains. The same
    parameters and state-dict keys either way."""

    def __init__(self) -> None:
        super().__init__()
        # Instance attributes, not class ones or globals: TorchScript reads these.
        self.input_skip = False
        # Input pixels are clipped to +-(1 - 1e-3) before atanh, so a saturated pixel (0 or
        # 255) maps to a finite pre-activation (3.8) and, with no change added, back to within
        # 0.13 grey levels.
        self.skip_bound = 1.0 - 1e-3

    def skip_input(self) -> ImageGenerator:
        """Drop the final tanh (it is applied after the input is added); returns ``self``."""
        tanhs = [(parent, name) for parent in self.model.modules()
                 for name, child in parent.named_children() if isinstance(child, nn.Tanh)]
        if len(tanhs) != 1:
            raise ValueError(f"{type(self).__name__}: input_skip needs exactly one final tanh, "
                             f"found {len(tanhs)}")
        parent, name = tanhs[0]
        setattr(parent, name, nn.Identity())
        self.input_skip = True
        return self

    def forward(self, img_m11):  # noqa: D102
        out = self.model(img_m11)
        if not self.input_skip:
            return out
        return torch.tanh(torch.atanh(img_m11.clamp(-self.skip_bound, self.skip_bound)) + out)
