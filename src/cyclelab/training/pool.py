"""The image pool of Shrivastava et al. used by CycleGAN: D sees a history of fakes."""

from __future__ import annotations

import random

import torch


def _follow(stored: list[torch.Tensor], like: torch.Tensor) -> list[torch.Tensor]:
    """``stored`` on the device and dtype of ``like``: a pool follows the device it is used on
    (a checkpoint holds its images on the CPU; a resumed CUDA run queries with CUDA tensors)."""
    if stored and (stored[0].device != like.device or stored[0].dtype != like.dtype):
        return [t.to(device=like.device, dtype=like.dtype) for t in stored]
    return stored


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
        self.images = _follow(self.images, images)
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

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; the images move to the device of the next query."""
        self.size = state["size"]
        self.images = list(state["images"])
        self.rng.setstate(state["rng"])


class Seed001Cache:
    """Seeds/001's cache of fakes (after the towardsdatascience CycleGAN tutorial): up to
    ``size`` images (25 there). Every call stores the new batch; once full, a contiguous block of
    ``block`` images (5 there) at a random place is overwritten. On every ``every``-th call (3
    there) D gets ``block`` cached images instead of the new batch (which the cache already
    holds): a contiguous run (v1) or uniformly drawn ones (v2/v3); otherwise the new batch."""

    def __init__(self, size: int = 25, block: int = 5, every: int = 3, draw: str = "random",
                 seed: int = 0) -> None:
        if draw not in ("random", "contiguous"):
            raise ValueError(f"draw {draw!r}: expected random or contiguous")
        self.size, self.block, self.every, self.draw = size, min(block, size), every, draw
        self.images: list[torch.Tensor] = []
        self.calls = 0
        self.rng = random.Random(seed)

    def _store(self, images: torch.Tensor) -> None:
        new = [image.unsqueeze(0).clone() for image in images]
        while new and len(self.images) < self.size:
            self.images.append(new.pop(0))
        if new:
            # Full: the newest images replace one contiguous block.
            new = new[-self.block:]
            start = self.rng.randrange(self.size - len(new) + 1)
            self.images[start:start + len(new)] = new

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The batch D is trained on this iteration (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        self.images = _follow(self.images, images)
        self._store(images)
        self.calls += 1
        if self.calls % self.every:
            return images
        n = min(self.block, len(self.images))
        if self.draw == "contiguous":
            start = self.rng.randrange(len(self.images) - n + 1)
            picked = self.images[start:start + n]
        else:
            picked = [self.images[i] for i in self.rng.sample(range(len(self.images)), n)]
        return torch.cat([t.clone() for t in picked], 0)

    def state_dict(self) -> dict:
        """Stored images, call counter and RNG state."""
        return {"size": self.size, "images": [t.cpu() for t in self.images], "calls": self.calls,
                "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; the images move to the device of the next query."""
        self.size, self.calls = state["size"], state["calls"]
        self.images = list(state["images"])
        self.rng.setstate(state["rng"])


def build_pool(cfg, seed: int, batch_size: int | None = None):
    """The fake-image history of ``train.pool`` (``cfg`` is a ``TrainConfig``)."""
    if cfg.pool == "seed001":
        return Seed001Cache(cfg.pool_size, cfg.cache_block or batch_size or cfg.batch_size,
                            cfg.cache_every, cfg.cache_draw, seed=seed)
    return ImagePool(cfg.pool_size, seed=seed)
