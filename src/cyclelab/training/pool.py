"""The image pool of Shrivastava et al. used by CycleGAN: D sees a history of fakes."""

from __future__ import annotations

import random

import torch


class ImagePool:
    """Keeps up to ``size`` generated images. For each incoming image: while the pool is not full,
    store and return it; afterwards, with probability 1/2 return a stored image and put the new
    one in its place, else return the new image. ``size == 0`` disables the pool."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape, mixing new and historical fakes (detached)."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() < 0.5:
                index = self.rng.randrange(self.size)
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        """Everything needed to resume: stored images and the RNG state."""
        return {"size": self.size, "images": [t.cpu() for t in self.images],
                "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:  # noqa: D102
        self.size = state["size"]
        self.images = list(state["images"])
        self.rng.setstate(state["rng"])
