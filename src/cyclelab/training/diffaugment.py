"""Differentiable augmentation of every discriminator input (``train.diffaugment``).

DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", 2020)
applies the same random, differentiable transforms to the real and the fake images that D
judges, in D's update and in G's, so D cannot memorise a few hundred training images and G's
gradient flows through the transforms back to its weights. The policies and their ranges are
the paper's code (``DiffAugment_pytorch.py``), for images in [-1, 1]:

- ``color``: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5);
- ``translation``: shift by up to 1/8 of the side, zero-padded;
- ``cutout``: one zeroed square of half the side, at a random place.

Here one call draws one set of parameters per image index and applies it to every batch passed
(the real and the fake images of that discriminator call get the same transforms, so D cannot
tell them apart by augmentation); batches may differ in length (a pool returning a block). The
random numbers come from the task's own CPU generator, saved with the checkpoint, so a resumed
run and a run on another device draw the same transforms. With no policy the images pass
through untouched and no random number is drawn: training is bit for bit what it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from cyclelab.config import DIFFAUGMENTS as POLICIES  # the order they are applied in

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5

Params = dict[str, torch.Tensor]


def _color_params(n: int, h: int, w: int, gen: torch.Generator) -> Params:
    return {"brightness": torch.rand(n, 1, 1, 1, generator=gen) - 0.5,
            "saturation": torch.rand(n, 1, 1, 1, generator=gen) * 2,
            "contrast": torch.rand(n, 1, 1, 1, generator=gen) + 0.5}


def _color(x: torch.Tensor, p: Params) -> torch.Tensor:
    x = x + p["brightness"]
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * p["saturation"] + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * p["contrast"] + mean


def _translation_params(n: int, h: int, w: int, gen: torch.Generator) -> Params:
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    return {"dy": torch.randint(-sy, sy + 1, (n, 1, 1), generator=gen),
            "dx": torch.randint(-sx, sx + 1, (n, 1, 1), generator=gen)}


def _translation(x: torch.Tensor, p: Params) -> torch.Tensor:
    n, _, h, w = x.shape
    batch, gy, gx = torch.meshgrid(torch.arange(n, device=x.device),
                                   torch.arange(h, device=x.device),
                                   torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + p["dy"] + 1, 0, h + 1)
    gx = torch.clamp(gx + p["dx"] + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # a zero border: shifted-in pixels are 0
    return padded.permute(0, 2, 3, 1)[batch, gy, gx].permute(0, 3, 1, 2)


def _cutout_params(n: int, h: int, w: int, gen: torch.Generator) -> Params:
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    return {"cy": torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen),
            "cx": torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen)}


def _cutout(x: torch.Tensor, p: Params) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = p["cy"] - ch // 2, p["cx"] - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS: dict[str, tuple[Callable[..., Params], Callable[[torch.Tensor, Params], torch.Tensor]]] = {
    "color": (_color_params, _color),
    "translation": (_translation_params, _translation),
    "cutout": (_cutout_params, _cutout),
}


class DiffAugment:
    """The transforms of ``policies`` (any of :data:`POLICIES`, applied in that order), drawn
    from a generator seeded with ``seed``."""

    def __init__(self, policies: Sequence[str], seed: int = 0) -> None:
        unknown = [p for p in policies if p not in _OPS]
        if unknown:
            raise ValueError(f"diffaugment policy {unknown[0]!r}: allowed {', '.join(POLICIES)}")
        self.policies = [p for p in POLICIES if p in policies]
        self.generator = torch.Generator().manual_seed(seed)

    def __bool__(self) -> bool:
        return bool(self.policies)

    def __call__(self, *batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``batches`` transformed alike: image ``i`` of each gets the same parameters."""
        if not self.policies:
            return batches
        n = max(len(b) for b in batches)
        _, _, h, w = batches[0].shape
        out = list(batches)
        for name in self.policies:
            draw, apply = _OPS[name]
            params = draw(n, h, w, self.generator)
            for i, batch in enumerate(out):
                on_device = {k: v[:len(batch)].to(batch.device, batch.dtype)
                             if v.is_floating_point() else v[:len(batch)].to(batch.device)
                             for k, v in params.items()}
                out[i] = apply(batch, on_device)
        return tuple(out)

    def state_dict(self) -> dict:  # noqa: D102
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:  # noqa: D102
        self.generator.set_state(state["generator"])
