"""Unpaired loading of prepared images: each domain decoded once into a uint8 tensor in memory;
epochs draw independent permutations of A and B (the two are unpaired)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclelab.errors import DataError


def image_files(folder: str | Path) -> list[Path]:
    """The prepared PNGs of one split, in a stable order."""
    return sorted(Path(folder).glob("*.png"))


def read_rgb(path: Path) -> np.ndarray:
    """One prepared image as H x W x 3 uint8; DataError naming it if it is corrupt."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for broken files
        raise DataError(f"{path}: corrupt or not an image ({type(exc).__name__}); rerun prepare "
                        "(dvc repro -f -s prepare)") from None


def load_folder(folder: str | Path, limit: int = 0,
                indices: Sequence[int] | None = None) -> torch.Tensor:
    """All PNGs of ``folder`` as a uint8 N x 3 x H x W tensor (the first ``limit`` if > 0, or
    those at ``indices`` of the sorted file list)."""
    files = image_files(folder)
    if limit > 0:
        files = files[:limit]
    if indices is not None:
        files = [files[i] for i in indices]
    if not files:
        raise DataError(f"{folder}: no prepared images; run the prepare stage (dvc repro)")
    arrays = [read_rgb(f) for f in files]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"{folder}: images of different sizes {sorted(shapes)[:2]}; "
                        "rerun prepare (dvc repro -f -s prepare)")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def load_validation(prepared: str | Path, domain: str, limit: int, purpose: str
                    ) -> torch.Tensor:
    """The first ``limit`` images of ``<prepared>/val<domain>`` (uint8 N x 3 x H x W), which
    every choice made during training reads (never the test split); DataError naming
    ``data.val_fraction`` when the split holds fewer than the 2 images FID needs (none when the
    fraction is 0). ``purpose`` says who needs them."""
    folder = Path(prepared) / f"val{domain}"
    found = len(image_files(folder))
    if found < 2:
        raise DataError(f"{folder}: {found} validation image(s), {purpose} needs at least 2 "
                        "(training never reads the test split); set data.val_fraction higher "
                        "(e.g. 0.1) and rerun prepare (dvc repro prepare)")
    return load_folder(folder, limit=limit)


def preview_images(prepared: str | Path, domain: str, limit: int) -> tuple[torch.Tensor, str]:
    """The first ``limit`` images of ``domain`` that sample grids made during training show,
    and their split: the validation split, else (``data.val_fraction: 0``) the training one;
    never the test split, which only evaluation reads."""
    split = "val" if image_files(Path(prepared) / f"val{domain}") else "train"
    return load_folder(Path(prepared) / f"{split}{domain}", limit=limit), split


def to_m11(img_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return img_uint8.float().div(127.5).sub(1.0)


def to_uint8(img_m11: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (rounded, clamped)."""
    return img_m11.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


class UnpairedBatches:
    """Batches ``(real_a, real_b)`` in [-1, 1] for one epoch.

    An epoch is one pass over the larger domain (or ``max_steps`` batches); the smaller domain
    is cycled through a fresh permutation. The order depends only on ``(seed, epoch)`` so a
    resumed run sees the same batches an uninterrupted one would.

    Augmentation as the official code's ``resize_and_crop``: resize to ``load_size`` (bicubic),
    a random ``crop_size`` crop per image, then a random horizontal flip when ``flip`` (wrong
    for digits). 0 keeps the prepared size. ``rank``/``world_size`` shard every global batch
    of ``batch_size`` images (a distributed run): rank r gets its r-th contiguous slice of the
    same augmented batch a single process would train on.
    """

    def __init__(self, domain_a: torch.Tensor, domain_b: torch.Tensor, batch_size: int,
                 seed: int, flip: bool = True, max_steps: int = 0, load_size: int = 0,
                 crop_size: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} ranks")
        self.a, self.b = domain_a, domain_b
        self.batch_size, self.seed, self.flip, self.max_steps = batch_size, seed, flip, max_steps
        self.load_size, self.crop_size = load_size, crop_size
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        steps = max(1, max(len(self.a), len(self.b)) // self.batch_size)
        return min(steps, self.max_steps) if self.max_steps else steps

    def _generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 100_003 + epoch)

    def _order(self, n: int, total: int, gen: torch.Generator) -> torch.Tensor:
        reps = -(-total // n)
        return torch.cat([torch.randperm(n, generator=gen) for _ in range(reps)])[:total]

    def _load(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 ``batch`` resized to ``load_size`` (bicubic), unchanged when 0."""
        if self.load_size and self.load_size != batch.shape[-1]:
            batch = torch.nn.functional.interpolate(
                batch.float(), size=(self.load_size, self.load_size), mode="bicubic",
                align_corners=False, antialias=True).round().clamp(0, 255).to(torch.uint8)
        return batch

    def center(self, img_uint8: torch.Tensor) -> torch.Tensor:
        """What the networks see of ``img_uint8`` without the randomness, in [-1, 1]: resized to
        ``load_size``, the central ``crop_size`` square, not flipped (sample grids)."""
        batch = self._load(img_uint8)
        size = batch.shape[-1]
        if self.crop_size and self.crop_size < size:
            top = (size - self.crop_size) // 2
            batch = batch[..., top:top + self.crop_size, top:top + self.crop_size]
        return to_m11(batch)

    def _augment(self, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        batch = self._load(batch)
        size = batch.shape[-1]
        if self.crop_size and self.crop_size < size:
            c = self.crop_size
            offsets = torch.randint(0, size - c + 1, (len(batch), 2), generator=gen).tolist()
            batch = torch.stack([img[:, y:y + c, x:x + c] for img, (y, x) in zip(batch, offsets,
                                                                                   strict=True)])
        if self.flip:
            mask = torch.rand(len(batch), generator=gen) < 0.5
            batch = torch.where(mask[:, None, None, None], batch.flip(-1), batch)
        return to_m11(batch)

    def __call__(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch``."""
        gen = self._generator(epoch)
        total = len(self) * self.batch_size
        order_a, order_b = self._order(len(self.a), total, gen), self._order(len(self.b), total,
                                                                              gen)
        per_rank = self.batch_size // self.world_size
        shard = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        for i in range(len(self)):
            idx = slice(i * self.batch_size, (i + 1) * self.batch_size)
            real_a = self._augment(self.a[order_a[idx]], gen)
            real_b = self._augment(self.b[order_b[idx]], gen)
            yield real_a[shard], real_b[shard]


class SingleBatches(UnpairedBatches):
    """Batches of one domain (autoencoder pretraining), same order and augmentation rules.

    ``flip`` has no default: the caller passes the training's ``train.flip`` (a flip learnt in
    pretraining is a mirrored digit on ``digits``)."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, *, flip: bool,
                 max_steps: int = 0, load_size: int = 0, crop_size: int = 0) -> None:
        super().__init__(images, images, batch_size, seed, flip, max_steps, load_size,
                         crop_size)

    def __call__(self, epoch: int) -> Iterator[torch.Tensor]:  # noqa: D102
        gen = self._generator(epoch)
        order = self._order(len(self.a), len(self) * self.batch_size, gen)
        for i in range(len(self)):
            yield self._augment(self.a[order[i * self.batch_size:(i + 1) * self.batch_size]],
                                gen)
