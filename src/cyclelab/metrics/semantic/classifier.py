"""Label accuracy: a small CNN per domain (:class:`DigitClassifier`), trained once on the real
training images of that domain with their labels (:mod:`.labels`) by the shared training loop
(:mod:`cyclelab.training.classifier`), reads each translation; it
should see the digit of the source image (does the 7 stay a 7?). This is seeds/003's missing
metric and the FCN-score idea of the CycleGAN paper (Zhu et al. 2017, Sec. 5.1.1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cyclelab.data.dataset import read_rgb, to_m11
from cyclelab.errors import DataError
from cyclelab.io import read_json
from cyclelab.runtime import Runtime

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


__all__ = ["MODEL_FILE", "META_FILE", "DigitClassifier", "predict", "accuracy",
           "save_classifier", "load_classifier", "label_scores"]
