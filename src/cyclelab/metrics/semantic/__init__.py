"""Semantic scores: does a translation keep what its source image shows?

Three families, each computed only where the data allows (:func:`semantic_scores`):

- ``label_accuracy``: a small CNN per domain (:mod:`.classifier`), trained once
  (:mod:`cyclelab.training.classifier`) on the real training images of that domain with the
  labels that ``prepare`` carries through (:mod:`.labels`: ``digits``, ``mnist2svhn``,
  ``mnist2colored_mnist``), reads each
  translation; it should see the digit of the source image (does the 7 stay a 7?). The
  classifier's accuracy on the real test images of that domain is reported beside it as
  ``label_accuracy_ceiling``: a translator cannot be read better than real images.
- ``paired_l1`` / ``paired_psnr`` / ``paired_ssim`` (:mod:`.paired`) for the sets whose test
  images come in pairs (the catalogue entry's ``pair_suffixes``): each translation against its
  ground-truth partner in the target test folder.
- ``pixel_accuracy`` / ``class_accuracy`` / ``class_iou`` (:mod:`.segmentation`) for photo ->
  label map where the entry has a ``palette`` (Cityscapes), as the photo->labels columns of the
  CycleGAN paper's Tables 2 and 3.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cyclelab.catalogue import CATALOGUE
from cyclelab.directions import BY_KEY
from cyclelab.metrics.semantic.classifier import (
    META_FILE,
    MODEL_FILE,
    DigitClassifier,
    accuracy,
    label_scores,
    load_classifier,
    predict,
    save_classifier,
)
from cyclelab.metrics.semantic.labels import folder_labels, read_labels
from cyclelab.metrics.semantic.paired import (
    find_partners,
    pair_key,
    paired_scores,
    partner_pairs,
)
from cyclelab.metrics.semantic.segmentation import (
    colours_to_classes,
    confusion,
    label_map_scores,
    segmentation_scores,
)
from cyclelab.runtime import Runtime


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
    entry = CATALOGUE.get(dataset)
    if entry is not None and entry.pair_suffixes is not None:
        pairs = partner_pairs(prepared / f"test{source}", source_names, fake,
                              prepared / f"test{target}", entry.pair_suffixes)
        if pairs:
            fakes_hwc, truths_hwc = zip(*pairs, strict=True)
            scores.update(paired_scores(fakes_hwc, truths_hwc))
            if entry.palette is not None and entry.palette.domain == target:
                scores.update(label_map_scores(fakes_hwc, truths_hwc, entry.palette))
    return scores


__all__ = ["MODEL_FILE", "META_FILE", "DigitClassifier", "read_labels", "folder_labels",
           "predict", "accuracy", "save_classifier", "load_classifier", "label_scores",
           "pair_key", "find_partners", "partner_pairs", "paired_scores", "colours_to_classes",
           "confusion", "segmentation_scores", "label_map_scores", "semantic_scores"]
