"""Sample grids: rows of images side by side, as uint8 arrays and PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from cyclelab.io import atomic_path


def grid(rows: list[torch.Tensor], pad: int = 2, scale: int = 1,
         labels: Sequence[str] | None = None) -> np.ndarray:
    """Tile ``rows`` (each N x 3 x H x W uint8) into one H x W x 3 uint8 image, white gaps.

    ``scale`` enlarges by pixel repetition so 32 px samples stay readable; ``labels`` (one per
    row) are drawn in a margin on the left, so the image explains itself."""
    n = max(len(r) for r in rows)
    h, w = rows[0].shape[-2:]
    canvas = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y:y + h, x:x + w] = img.permute(1, 2, 0).numpy()
    if scale > 1:
        canvas = canvas.repeat(scale, 0).repeat(scale, 1)
    if labels:
        canvas = _label_rows(canvas, list(labels), row_height=(h + pad) * scale, top=pad * scale)
    return canvas


def _label_rows(canvas: np.ndarray, labels: list[str], row_height: int, top: int) -> np.ndarray:
    """``canvas`` with a white margin on the left holding one label per row."""
    font = ImageFont.load_default(size=max(10, min(16, row_height // 3)))
    text = [label.replace("→", "->") for label in labels]  # the default font has no arrows
    width = int(max(font.getlength(t) for t in text)) + 8
    out = Image.new("RGB", (canvas.shape[1] + width, canvas.shape[0]), "white")
    out.paste(Image.fromarray(canvas), (width, 0))
    draw = ImageDraw.Draw(out)
    for i, label in enumerate(text):
        draw.text((4, top + i * row_height + row_height // 2), label, fill="black", font=font,
                  anchor="lm")
    return np.asarray(out)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an H x W x 3 uint8 array as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path


def display_scale(image_size: int) -> int:
    """Enlargement that makes small images legible in reports (32 px -> x4)."""
    return max(1, 128 // image_size)
