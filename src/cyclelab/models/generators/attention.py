"""Seed 004's generator: the ResNet generator (instance norm, reflection padding) whose
residual blocks recalibrate their output with Squeeze-and-Excitation and CBAM (channel
attention from max- and average-pooled features, then spatial attention), followed by a
self-attention block after the residual stack for global coherence.

Reference size: ngf 64, 9 blocks: 11,611,206 parameters."""

from __future__ import annotations

from torch import nn

from cyclelab.models.generators.resnet import decoder_layers, encoder_layers
from cyclelab.models.layers import (
    CBAM,
    ImageGenerator,
    ResnetBlock,
    SelfAttention,
    SqueezeExcitation,
)


class AttentionResnetBlock(ResnetBlock):
    """``x + CBAM(SE(body(x)))``."""

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__(channels, norm, dropout)
        self.attention = nn.Sequential(SqueezeExcitation(channels), CBAM(channels))

    def forward(self, x):  # noqa: D102
        return x + self.attention(self.body(x))


class AttentionGenerator(ImageGenerator):
    """Encoder, attention residual blocks, self-attention, decoder; images in [-1, 1]."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, n_downsampling: int = 2, norm: str = "instance",
                 dropout: float = 0.0, upsample: str = "transpose") -> None:
        super().__init__()
        layers, channels = encoder_layers(in_channels, ngf, n_downsampling, norm)
        layers += [AttentionResnetBlock(channels, norm, dropout) for _ in range(n_blocks)]
        layers += [SelfAttention(channels)]
        layers += decoder_layers(channels, out_channels, n_downsampling, norm, upsample)
        self.model = nn.Sequential(*layers)
