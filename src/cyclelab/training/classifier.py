"""Training the classifier behind ``label_accuracy``
(:class:`~cyclelab.metrics.semantic.classifier.DigitClassifier`) by the shared loop
(:func:`~cyclelab.training.loop.fit`): its :class:`ClassifierTask` is the step, its
:class:`LabelledBatches` the epochs' batches. A run takes seconds, so it keeps no checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cyclelab.config import ClassifierConfig
from cyclelab.data.dataset import load_folder, to_m11
from cyclelab.metrics.semantic.classifier import DigitClassifier, accuracy
from cyclelab.metrics.semantic.labels import folder_labels, read_labels
from cyclelab.paths import LABELS_FILE
from cyclelab.runtime import Runtime, seed_everything
from cyclelab.training.loop import fit
from cyclelab.training.schedules import Schedule


def _shift(batch: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by up to ``max_shift`` px each way (edge padding): digits wander."""
    if max_shift <= 0:
        return batch
    size = batch.shape[-1]
    padded = nn.functional.pad(batch, [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (len(batch), 2), generator=gen)
    return torch.stack([img[:, y:y + size, x:x + size]
                        for img, (y, x) in zip(padded, offsets.tolist(), strict=True)])


class LabelledBatches:
    """``batches(epoch)`` of :func:`~cyclelab.training.loop.fit`: (images in [-1, 1], labels)
    in an order that depends only on ``seed`` and the epoch, each image moved by up to
    ``max_shift`` px; a last batch of one image is left out (batch norm needs two)."""

    def __init__(self, images_uint8: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 max_shift: int, seed: int) -> None:
        self.images, self.labels = images_uint8, labels
        self.batch_size, self.max_shift, self.seed = batch_size, max_shift, seed

    def __call__(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # noqa: D102
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.labels), generator=gen)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) >= 2:
                yield _shift(to_m11(self.images[idx]), self.max_shift, gen), self.labels[idx]


class ClassifierTask:
    """The classifier as a :class:`~cyclelab.training.loop.Task`: cross-entropy, Adam."""

    def __init__(self, model: DigitClassifier, cfg: ClassifierConfig, runtime: Runtime) -> None:
        self.runtime, self.model = runtime, runtime.prepare(model)
        self.nets = {"classifier": self.model}
        self.optimizers = {"classifier": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One step on (images in [-1, 1], labels); the loss and the batch's accuracy."""
        images_m11, labels = batch
        target = labels.to(self.runtime.device)
        # fp32 on every device: the net is tiny, and fp16 would need a gradient scaler.
        logits = self.model(self.runtime.tensor(images_m11))
        loss = nn.functional.cross_entropy(logits, target)
        self.optimizers["classifier"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["classifier"].step()
        return {"loss": float(loss.detach()),
                "train_accuracy": float((logits.argmax(1) == target).float().mean())}

    def extra_state(self) -> dict[str, Any]:  # noqa: D102
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: D102
        pass


def cosine_to_zero(epochs: int) -> Schedule:
    """Cosine decay over ``epochs``, read at each epoch's middle (1 -> 0): the last epoch's
    weights and batch-norm statistics settle."""
    return lambda epoch: 0.5 * (1.0 + math.cos(math.pi * (epoch + 0.5) / epochs))


def train_classifier(images_uint8: torch.Tensor, labels: Sequence[int], cfg: ClassifierConfig,
                     runtime: Runtime, *, seed: int, n_classes: int | None = None
                     ) -> tuple[DigitClassifier, list[dict[str, float]]]:
    """A :class:`DigitClassifier` trained on ``images_uint8`` (N x 3 x H x W) and ``labels``
    by the shared training loop (:func:`~cyclelab.training.loop.fit`, no checkpoint).

    Adam with cosine decay, ``cfg.epochs`` passes in a seeded order, random shifts of up to
    ``cfg.max_shift`` px. Returns the model (eval mode) and one row per epoch (mean loss and
    training accuracy over its batches, lr, steps, seconds).
    """
    seed_everything(seed)
    targets = torch.as_tensor(list(labels), dtype=torch.long)
    n_classes = n_classes or int(targets.max()) + 1
    task = ClassifierTask(DigitClassifier(n_classes, cfg.width), cfg, runtime)
    batches = LabelledBatches(images_uint8, targets, cfg.batch_size, cfg.max_shift, seed)
    result = fit(task, batches, epochs=cfg.epochs, schedule=cosine_to_zero(cfg.epochs),
                 checkpoint_path=None, fingerprint="", desc="classifier")
    return task.model.eval(), result.history


def fit_domain(prepared: Path, domain: str, cfg: ClassifierConfig, runtime: Runtime, *,
               seed: int) -> tuple[DigitClassifier | None, dict[str, Any]]:
    """Train the classifier of ``domain`` from ``prepared``; return it and its meta record.

    Without labels for that domain the model is None and the record says why. Meta keys:
    ``domain``, ``labels`` (bool), ``reason``, and with labels ``n_classes``, ``width``,
    ``n_train`` (at most ``cfg.max_images``, a seeded subset), ``n_train_available``,
    ``n_test``, ``epochs``, ``train_accuracy``, ``test_accuracy`` (the ceiling
    of ``label_accuracy``) and ``chance`` (the most frequent test label's share: what always
    guessing it would score). No timings: the same params give the same files.
    """
    prepared = Path(prepared)
    labels = read_labels(prepared)
    meta: dict[str, Any] = {"domain": domain, "labels": False}
    train_folder, test_folder = f"train{domain}", f"test{domain}"
    if not labels:
        meta["reason"] = f"no {LABELS_FILE} in {prepared}: this dataset has no class labels"
        return None, meta
    if not any(key.startswith(f"{train_folder}/") for key in labels):
        meta["reason"] = f"{LABELS_FILE} has no labels for domain {domain}"
        return None, meta
    train_names, train_labels = folder_labels(prepared, train_folder, labels)
    test_names, test_labels = folder_labels(prepared, test_folder, labels)
    n_classes = max(train_labels + test_labels) + 1
    train_images = load_folder(prepared / train_folder)
    n_available = len(train_names)
    if 0 < cfg.max_images < n_available:
        keep = np.sort(np.random.default_rng(seed).choice(n_available, cfg.max_images,
                                                          replace=False))
        train_images = train_images[torch.from_numpy(keep)]
        train_labels = [train_labels[i] for i in keep]
    model, history = train_classifier(train_images, train_labels, cfg, runtime, seed=seed,
                                      n_classes=n_classes)
    test_accuracy = accuracy(model, load_folder(prepared / test_folder), test_labels, runtime)
    counts = np.bincount(test_labels, minlength=n_classes)
    meta.update(labels=True, reason="", n_classes=n_classes, width=cfg.width,
                n_train=len(train_labels), n_train_available=n_available,
                n_test=len(test_names), epochs=cfg.epochs,
                train_accuracy=history[-1]["train_accuracy"] if history else 0.0,
                test_accuracy=test_accuracy, chance=float(counts.max() / counts.sum()))
    return model, meta


__all__ = ["LabelledBatches", "ClassifierTask", "cosine_to_zero", "train_classifier",
           "fit_domain"]
