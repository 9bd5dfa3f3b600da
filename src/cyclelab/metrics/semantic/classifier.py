"""Label accuracy: a small CNN per domain (:class:`DigitClassifier`), trained once on the real
training images of that domain with their labels (:mod:`.labels`), reads each translation; it
should see the digit of the source image (does the 7 stay a 7?). This is seeds/003's missing
metric and the FCN-score idea of the CycleGAN paper (Zhu et al. 2017, Sec. 5.1.1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cyclelab.config import ClassifierConfig
from cyclelab.data.dataset import load_folder, read_rgb, to_m11
from cyclelab.errors import DataError
from cyclelab.io import read_json
from cyclelab.metrics.semantic.labels import folder_labels, read_labels
from cyclelab.paths import LABELS_FILE
from cyclelab.runtime import Runtime, seed_everything

MODEL_FILE = "model.pt"
META_FILE = "meta.json"


class DigitClassifier(nn.Module):
    """A small CNN for any square RGB size: three conv stages, global average pool, linear.

    0.10 M parameters at ``width`` 32 and 10 classes; one epoch over 400 images at 32 px
    costs about 0.6 s of one CPU core (measured), so the default 20 epochs take 11-14 s.
    """

    def __init__(self, n_classes: int, width: int = 32) -> None:
        super().__init__()

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *stage(3, width), *stage(width, width), nn.MaxPool2d(2),
            *stage(width, 2 * width), nn.MaxPool2d(2),
            *stage(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, n_classes)

    def forward(self, img_m11: torch.Tensor) -> torch.Tensor:
        """Class logits of a batch in [-1, 1]."""
        return self.head(self.features(img_m11))


def _shift(batch: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by up to ``max_shift`` px each way (edge padding): digits wander."""
    if max_shift <= 0:
        return batch
    size = batch.shape[-1]
    padded = nn.functional.pad(batch, [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (len(batch), 2), generator=gen)
    return torch.stack([img[:, y:y + size, x:x + size]
                        for img, (y, x) in zip(padded, offsets.tolist(), strict=True)])


def train_classifier(images_uint8: torch.Tensor, labels: Sequence[int], cfg: ClassifierConfig,
                     runtime: Runtime, *, seed: int, n_classes: int | None = None
                     ) -> tuple[DigitClassifier, list[dict[str, float]]]:
    """A :class:`DigitClassifier` trained on ``images_uint8`` (N x 3 x H x W) and ``labels``.

    Adam with cosine decay, ``cfg.epochs`` passes in a seeded order, random shifts of up to
    ``cfg.max_shift`` px. Returns the model (eval mode) and one row per epoch (loss,
    training accuracy, seconds).
    """
    seed_everything(seed)
    targets = torch.as_tensor(list(labels), dtype=torch.long)
    n_classes = n_classes or int(targets.max()) + 1
    model = runtime.prepare(DigitClassifier(n_classes, cfg.width))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # Cosine decay to zero: the last epoch's weights (and batch-norm statistics) settle.
    steps = cfg.epochs * -(-len(targets) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        started, loss_sum, correct = time.perf_counter(), 0.0, 0
        order = torch.randperm(len(targets), generator=gen)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two images
                continue
            batch = runtime.tensor(_shift(to_m11(images_uint8[idx]), cfg.max_shift, gen))
            target = targets[idx].to(runtime.device)
            # fp32 on every device: the net is tiny, and fp16 would need a gradient scaler.
            logits = model(batch)
            loss = nn.functional.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == target).sum())
        history.append({"epoch": epoch + 1, "loss": loss_sum / len(targets),
                        "train_accuracy": correct / len(targets),
                        "seconds": round(time.perf_counter() - started, 3)})
    return model.eval(), history


@torch.no_grad()
def predict(model: nn.Module, images_uint8: torch.Tensor, runtime: Runtime,
            batch_size: int = 256) -> torch.Tensor:
    """Predicted class of each image (uint8 N x 3 x H x W), as a CPU long tensor."""
    model.eval()
    out = []
    for start in range(0, len(images_uint8), batch_size):
        batch = runtime.tensor(to_m11(images_uint8[start:start + batch_size]))
        with runtime.autocast():
            out.append(model(batch).float().argmax(1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, images_uint8: torch.Tensor, labels: Sequence[int],
             runtime: Runtime) -> float:
    """Fraction of ``images_uint8`` that ``model`` reads as ``labels``."""
    predicted = predict(model, images_uint8, runtime)
    return int((predicted == torch.as_tensor(list(labels))).sum()) / max(len(predicted), 1)


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


def save_classifier(model: nn.Module | None, meta: dict[str, Any], out_dir: Path) -> None:
    """Write ``meta.json`` and, when there is a model, ``model.pt`` (a plain state_dict)."""
    out_dir = Path(out_dir)
    if model is not None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, out_dir / MODEL_FILE)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_classifier(domain_dir: Path, runtime: Runtime
                    ) -> tuple[DigitClassifier | None, dict[str, Any]]:
    """The classifier of one domain and its meta; model None when it was trained without labels.

    DataError when the classifier stage has not run.
    """
    domain_dir = Path(domain_dir)
    meta_path = domain_dir / META_FILE
    if not meta_path.is_file():
        raise DataError(f"{meta_path}: missing; run the classifier stage "
                        f"(dvc repro classifier@{domain_dir.name})")
    meta = read_json(meta_path, f"dvc repro classifier@{domain_dir.name}")
    if not meta.get("labels"):
        return None, meta
    model = DigitClassifier(meta["n_classes"], meta["width"])
    model.load_state_dict(torch.load(domain_dir / MODEL_FILE, map_location="cpu",
                                     weights_only=True))
    return runtime.prepare(model).eval(), meta


def label_scores(source_dir: Path, source_names: Sequence[str], fake_uint8: torch.Tensor,
                 model: nn.Module, meta: dict[str, Any], labels: dict[str, int],
                 runtime: Runtime) -> dict[str, float]:
    """``label_accuracy`` of the target classifier on the translations, with its reference lines.

    ``label_accuracy_ceiling``: the classifier on real target test images (its meta);
    ``label_accuracy_identity``: on the untranslated source images (doing nothing: on digits
    the B classifier reads plain white-on-black digits too, so A -> B must beat this line);
    ``label_chance``: always guessing the most frequent test label. Images whose source has no
    label are left out (``label_n`` counts those scored); ``{}`` when none has one.
    """
    source_dir = Path(source_dir)
    keep = [i for i, name in enumerate(source_names) if f"{source_dir.name}/{name}" in labels]
    if not keep:
        return {}
    expected = [labels[f"{source_dir.name}/{source_names[i]}"] for i in keep]
    untranslated = torch.from_numpy(np.stack([read_rgb(source_dir / source_names[i])
                                              for i in keep])).permute(0, 3, 1, 2)
    return {"label_accuracy": accuracy(model, fake_uint8[keep], expected, runtime),
            "label_accuracy_ceiling": float(meta["test_accuracy"]),
            "label_accuracy_identity": accuracy(model, untranslated, expected, runtime),
            "label_chance": float(meta["chance"]), "label_n": float(len(keep))}


__all__ = ["MODEL_FILE", "META_FILE", "DigitClassifier", "train_classifier", "predict",
           "accuracy", "fit_domain", "save_classifier", "load_classifier", "label_scores"]
