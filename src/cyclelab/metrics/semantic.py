"""Semantic scores: does a translation keep what its source image shows?

Three families, each computed only where the data allows (:func:`semantic_scores`):

- ``label_accuracy``: a small CNN per domain (:class:`DigitClassifier`), trained once on the
  real training images of that domain with the labels that ``prepare`` carries through
  (``data/prepared/labels.csv``: ``digits``, ``mnist2svhn``, ``mnist2colored_mnist``), reads
  each translation; it should see the digit of the source image (does the 7 stay a 7?). This
  is seeds/003's missing metric and the FCN-score idea of the CycleGAN paper (Zhu et al. 2017,
  Sec. 5.1.1). The classifier's accuracy on the real test images of that domain is reported
  beside it as ``label_accuracy_ceiling``: a translator cannot be read better than real images.
- ``paired_l1`` / ``paired_psnr`` / ``paired_ssim`` for aligned sets, whose test images come in
  pairs: each translation against its ground-truth partner in the target test folder.
- ``pixel_accuracy`` / ``class_accuracy`` / ``class_iou`` for Cityscapes photo -> label, as the
  photo->labels columns of the CycleGAN paper's Tables 2 and 3: every pixel of the generated
  label map and of the ground truth is mapped to the nearest Cityscapes palette colour, then
  the confusion matrix over the 19 evaluation classes gives the three means (the formulas of
  pix2pix's ``scripts/eval_cityscapes``; ground-truth void pixels are ignored).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from cyclelab.config import ClassifierConfig
from cyclelab.data.dataset import load_folder, to_m11
from cyclelab.directions import A_TO_B, BY_KEY
from cyclelab.errors import DataError
from cyclelab.metrics.similarity import psnr, ssim
from cyclelab.paths import LABELS_FILE
from cyclelab.runtime import Runtime, seed_everything

MODEL_FILE = "model.pt"
META_FILE = "meta.json"

# Catalogue sets whose test images come in pairs (the same scene in A and B). The pairing is in
# the prepared file names: the same stem in both folders (aligned pix2pix halves, colorization),
# or a stem with a per-domain suffix: maps/facades ``1_A.png`` <-> ``1_B.png``, Cityscapes
# ``x_leftImg8bit.png`` <-> ``x_gtFine_color.png``.
ALIGNED_DATASETS = frozenset({"facades", "maps", "mini_pix2pix", "mini_colorization",
                              "cityscapes"})
_PAIR_SUFFIXES = ("_leftImg8bit", "_gtFine_color", "_A", "_B")
# The direction whose target is a label map, per dataset.
SEGMENTATION = {"cityscapes": A_TO_B.key}

# Cityscapes colours (cityscapesScripts labels.py): the 19 evaluation classes in trainId order,
# then the void classes' colours. A pixel nearest to a void colour is no class: ignored in the
# ground truth, a wrong answer in a translation.
CITYSCAPES_CLASSES = (
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)), ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)), ("rider", (255, 0, 0)), ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
)
CITYSCAPES_VOID = ((0, 0, 0), (111, 74, 0), (81, 0, 81), (250, 170, 160), (230, 150, 140),
                   (180, 165, 180), (150, 100, 100), (150, 120, 90), (0, 0, 90), (0, 0, 110))


# ---------------------------------------------------------------------------- labels

def read_labels(prepared: Path) -> dict[str, int]:
    """``{"testA/00000.png": 7, ...}`` from ``<prepared>/labels.csv``; ``{}`` when it is absent."""
    path = Path(prepared) / LABELS_FILE
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["file"]: int(row["label"]) for row in csv.DictReader(handle)}


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def folder_labels(prepared: Path, folder: str, labels: dict[str, int] | None = None
                  ) -> tuple[list[str], list[int]]:
    """File names (sorted, as :func:`load_folder` reads them) of ``folder`` and their labels.

    DataError when some image of the folder has no label (a labels file from another run).
    """
    labels = read_labels(prepared) if labels is None else labels
    names = sorted(p.name for p in (Path(prepared) / folder).glob("*.png"))
    missing = [name for name in names if f"{folder}/{name}" not in labels]
    if missing:
        raise DataError(f"{Path(prepared) / LABELS_FILE}: no label for {len(missing)} image(s) "
                        f"of {folder} (first: {missing[0]}); rerun prepare (dvc repro prepare)")
    return names, [labels[f"{folder}/{name}"] for name in names]


# ---------------------------------------------------------------------------- the classifier

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
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if not meta.get("labels"):
        return None, meta
    model = DigitClassifier(meta["n_classes"], meta["width"])
    model.load_state_dict(torch.load(domain_dir / MODEL_FILE, map_location="cpu",
                                     weights_only=True))
    return runtime.prepare(model).eval(), meta


# ---------------------------------------------------------------------------- label accuracy

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
    untranslated = torch.from_numpy(np.stack([_read_rgb(source_dir / source_names[i])
                                              for i in keep])).permute(0, 3, 1, 2)
    return {"label_accuracy": accuracy(model, fake_uint8[keep], expected, runtime),
            "label_accuracy_ceiling": float(meta["test_accuracy"]),
            "label_accuracy_identity": accuracy(model, untranslated, expected, runtime),
            "label_chance": float(meta["chance"]), "label_n": float(len(keep))}


# ---------------------------------------------------------------------------- paired scores

def pair_key(name: str) -> str:
    """The scene a prepared file shows: its stem without a per-domain suffix."""
    stem = Path(name).stem
    for suffix in _PAIR_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[:-len(suffix)]
    return stem


def find_partners(source_names: Sequence[str], target_dir: Path) -> list[Path | None]:
    """The ground-truth partner of each source image in ``target_dir`` (None if it has none)."""
    by_key: dict[str, Path] = {}
    for path in sorted(Path(target_dir).glob("*.png")):
        by_key.setdefault(pair_key(path.name), path)
    return [by_key.get(pair_key(name)) for name in source_names]


def _shape(img_hwc: np.ndarray) -> str:
    return "×".join(map(str, img_hwc.shape))


def paired_scores(fakes_hwc: Sequence[np.ndarray], truths_hwc: Sequence[np.ndarray]
                  ) -> dict[str, float]:
    """Mean L1 (pixel values in [0, 1]), PSNR (dB) and SSIM of each translation vs its truth."""
    pairs = list(zip(fakes_hwc, truths_hwc, strict=True))
    l1 = [np.abs(f.astype(np.float64) - t.astype(np.float64)).mean() / 255.0 for f, t in pairs]
    return {"paired_l1": float(np.mean(l1)),
            "paired_psnr": float(np.mean([psnr(f, t) for f, t in pairs])),
            "paired_ssim": float(np.mean([ssim(f, t) for f, t in pairs])),
            "paired_n": float(len(pairs))}


# ---------------------------------------------------------------------------- segmentation

def _palette() -> tuple[np.ndarray, np.ndarray]:
    """Palette colours (K x 3, int32) and the class of each (19 = void)."""
    n = len(CITYSCAPES_CLASSES)
    colours = [c for _, c in CITYSCAPES_CLASSES] + list(CITYSCAPES_VOID)
    classes = list(range(n)) + [n] * len(CITYSCAPES_VOID)
    return np.array(colours, dtype=np.int32), np.array(classes, dtype=np.int64)


def colours_to_classes(img_hwc: np.ndarray) -> np.ndarray:
    """Class index (0..18, 19 = void) of every pixel: the nearest palette colour's class."""
    colours, classes = _palette()
    pixels = img_hwc.reshape(-1, 3).astype(np.int32)
    distance = ((pixels[:, None, :] - colours[None, :, :]) ** 2).sum(-1)
    return classes[distance.argmin(1)].reshape(img_hwc.shape[:2])


def confusion(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """n x (n + 1) counts: rows the true class, columns the predicted one (column n: void).

    Pixels whose true class is void (>= n) are left out, as in pix2pix's ``fast_hist``.
    """
    truth, predicted = truth.ravel(), predicted.ravel()
    keep = truth < n_classes
    index = truth[keep] * (n_classes + 1) + np.minimum(predicted[keep], n_classes)
    return np.bincount(index, minlength=n_classes * (n_classes + 1)).reshape(
        n_classes, n_classes + 1)


def segmentation_scores(hist: np.ndarray) -> dict[str, float]:
    """Per-pixel accuracy, mean per-class accuracy and mean class IoU of a confusion matrix.

    Means skip classes absent from the ground truth (their accuracy is 0/0); a class that is
    predicted but absent counts with IoU 0, as in the CycleGAN paper's evaluation code.
    """
    n = hist.shape[0]
    correct = np.diag(hist[:, :n]).astype(np.float64)
    truth_total = hist.sum(1).astype(np.float64)
    predicted_total = hist[:, :n].sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = correct / truth_total
        iou = correct / (truth_total + predicted_total - correct)
    total = truth_total.sum()
    return {"pixel_accuracy": float(correct.sum() / total) if total else math.nan,
            "class_accuracy": float(np.nanmean(class_acc)) if total else math.nan,
            "class_iou": float(np.nanmean(iou)) if total else math.nan}


def label_map_scores(fakes_hwc: Sequence[np.ndarray], truths_hwc: Sequence[np.ndarray]
                     ) -> dict[str, float]:
    """The three Cityscapes photo->label scores over all pixels of all pairs."""
    n = len(CITYSCAPES_CLASSES)
    hist = np.zeros((n, n + 1), dtype=np.int64)
    for fake, truth in zip(fakes_hwc, truths_hwc, strict=True):
        hist += confusion(colours_to_classes(truth), colours_to_classes(fake), n)
    return segmentation_scores(hist)


# ---------------------------------------------------------------------------- entry point

def semantic_scores(direction: str, source_names: list[str], fake: torch.Tensor, *,
                    prepared: Path, classifier_dir: Path, dataset: str,
                    runtime: Runtime) -> dict[str, float]:
    """Every semantic score that the data allows for one direction; ``{}`` when none does.

    ``direction``: ``A_to_B`` or ``B_to_A``; ``source_names``: file names in
    ``<prepared>/test<source>`` of the images that ``fake`` (uint8 N x 3 x H x W) translates,
    in the same order; ``classifier_dir``: the classifier stage's folder (``<domain>/`` below
    it); ``dataset``: ``data.dataset``.
    """
    if direction not in BY_KEY:
        raise ValueError(f"direction must be one of {sorted(BY_KEY)}, got {direction!r}")
    if len(source_names) != len(fake):
        raise ValueError(f"{len(source_names)} names for {len(fake)} translations")
    source, target = BY_KEY[direction].source, BY_KEY[direction].target
    prepared = Path(prepared)
    scores: dict[str, float] = {}
    labels = read_labels(prepared)
    if labels:
        model, meta = load_classifier(Path(classifier_dir) / target, runtime)
        if model is not None:
            scores.update(label_scores(prepared / f"test{source}", source_names, fake, model,
                                       meta, labels, runtime))
    if dataset in ALIGNED_DATASETS:
        partners = find_partners(source_names, prepared / f"test{target}")
        pairs = []
        for i, (name, path) in enumerate(zip(source_names, partners, strict=True)):
            if path is None:  # no ground truth for this image: counted out in paired_n
                continue
            fake_hwc, truth = fake[i].permute(1, 2, 0).numpy(), _read_rgb(path)
            if fake_hwc.shape != truth.shape:
                raise DataError(
                    f"{prepared / f'test{source}' / name} translates to {_shape(fake_hwc)} but "
                    f"its ground-truth partner {path} is {_shape(truth)}; paired scores need "
                    "both at one size: rerun `dvc repro prepare` so that both domains are "
                    "prepared at data.image_size")
            pairs.append((fake_hwc, truth))
        if pairs:
            fakes_hwc, truths_hwc = zip(*pairs, strict=True)
            scores.update(paired_scores(fakes_hwc, truths_hwc))
            if SEGMENTATION.get(dataset) == direction:
                scores.update(label_map_scores(fakes_hwc, truths_hwc))
    return scores


__all__ = ["ALIGNED_DATASETS", "CITYSCAPES_CLASSES", "DigitClassifier", "read_labels",
           "folder_labels", "train_classifier", "predict", "accuracy", "fit_domain",
           "save_classifier", "load_classifier", "label_scores", "pair_key", "find_partners",
           "paired_scores", "colours_to_classes", "confusion", "segmentation_scores",
           "label_map_scores", "semantic_scores"]
