"""The class labels that ``prepare`` carries through (``<prepared>/labels.csv``: ``digits``,
``mnist2svhn``, ``mnist2colored_mnist``): one label per prepared image, keyed
``<split folder>/<file>``."""

from __future__ import annotations

import csv
from pathlib import Path

from cyclelab.errors import DataError
from cyclelab.paths import LABELS_FILE


def read_labels(prepared: Path) -> dict[str, int]:
    """``{"testA/00000.png": 7, ...}`` from ``<prepared>/labels.csv``; ``{}`` when it is absent."""
    path = Path(prepared) / LABELS_FILE
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["file"]: int(row["label"]) for row in csv.DictReader(handle)}


def folder_labels(prepared: Path, folder: str, labels: dict[str, int] | None = None
                  ) -> tuple[list[str], list[int]]:
    """File names (sorted, as :func:`~cyclelab.data.dataset.load_folder` reads them) of
    ``folder`` and their labels.

    DataError when some image of the folder has no label (a labels file from another run).
    """
    labels = read_labels(prepared) if labels is None else labels
    names = sorted(p.name for p in (Path(prepared) / folder).glob("*.png"))
    missing = [name for name in names if f"{folder}/{name}" not in labels]
    if missing:
        raise DataError(f"{Path(prepared) / LABELS_FILE}: no label for {len(missing)} image(s) "
                        f"of {folder} (first: {missing[0]}); rerun prepare (dvc repro prepare)")
    return names, [labels[f"{folder}/{name}"] for name in names]


__all__ = ["read_labels", "folder_labels"]
