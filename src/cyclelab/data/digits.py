"""The embedded ``digits`` dataset: MNIST-like digits (A) <-> coloured outlined digits (B).

This is the MNIST <-> coloured-MNIST experiment of ``seeds/003_*``, rebuilt from assets that
ship inside installed packages so the default pipeline needs no network and no download:

* glyphs come from the DejaVu Sans fonts that matplotlib ships (``mpl-data/fonts/ttf``),
  drawn with a random weight, stroke width, slant, rotation, size and position;
* domain A is white-on-black, like MNIST;
* domain B draws the same kind of digit in a saturated colour with a dark outline on a smooth
  pale background, a linear gradient between two pale colours at a random angle. With
  ``palette="fixed"`` (the default) every B digit is orange (hue jittered) on a pale blue
  gradient: one target style, as an orange is orange in apple2orange, so A→B is a translation
  and not a choice among colours. With ``palette="varied"`` each B image draws any vivid fill
  and any two pale colours: A→B is one-to-many, and a cycle-consistent model hides its source in
  the colour it invents (docs/default-study.md). The domains differ in colour, stroke and
  background, as seed 003's coloured MNIST;
  B's backgrounds are smooth rather than the photo crops seed 003 used (Lenna): on busy crops a
  32-px digit was barely legible even untranslated, and the study could not tell a translation
  that keeps the digit from one that does not (docs/default-study.md).

A and B are unpaired: every image draws its own digit. Each image is drawn by its own
generator, spawned from ``SeedSequence([seed, split, domain])``, so a folder never depends on
the size of another and the first ``n`` images do not change when the count grows.
"""

from __future__ import annotations

import colorsys
import csv
import functools
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cyclelab.errors import DataError
from cyclelab.paths import LABELS_FILE

SPLITS = ("train", "test")
DOMAINS = ("A", "B")
FOLDERS = tuple(f"{split}{domain}" for split in SPLITS for domain in DOMAINS)

FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
MIN_IMAGE_SIZE = 8
# Drawing happens on a canvas this many times larger, then LANCZOS down-sampling antialiases.
_MAX_SUPERSAMPLE = 4
_MIN_SUPERSAMPLE = 2
_MAX_CANVAS = 256
# Colours tried per B image, and how far (RGB distance) from the background one must be.
_N_COLOUR_CANDIDATES = 8
_MIN_COLOUR_DISTANCE = 160.0
# B's background: two pale colours (HSV saturation and value ranges) blended linearly.
_PALE_SATURATION = (0.1, 0.45)
_PALE_VALUE = (0.85, 1.0)
# Per palette, the hue ranges (HSV, 0-1) of B's fill and of its background's two colours.
_HUES = {"fixed": ((0.05, 0.11), (0.53, 0.63)),  # orange on pale blue
         "varied": ((0.0, 1.0), (0.0, 1.0))}  # any
PALETTES = tuple(_HUES)


def _check_palette(palette: str) -> None:
    if palette not in _HUES:
        raise ValueError(f"palette must be one of {PALETTES}, got {palette!r}")


@dataclass(frozen=True)
class DigitStyle:
    """How one digit is drawn; lengths are fractions of the frame or of the font size."""

    digit: int
    font_file: str
    stroke: float  # extra stroke width, as a fraction of the font size
    rotation_deg: float  # counter-clockwise
    shear: float  # horizontal slant, x += shear * (-y): positive leans right like handwriting
    aspect: float  # width stretch
    height: float  # glyph height as a fraction of the frame
    pos_x: float  # where the glyph sits in the free horizontal space, 0 = left, 1 = right
    pos_y: float  # same, vertically


def sample_style(rng: np.random.Generator) -> DigitStyle:
    """Draw a random digit and its appearance; ranges keep it MNIST-like and inside the frame."""
    digit = int(rng.integers(10))
    bold = bool(rng.random() < 0.5)
    # Regular DejaVu is thinner than an MNIST pen stroke, so it always gets some stroke.
    stroke = float(rng.uniform(0.0, 0.015) if bold else rng.uniform(0.01, 0.04))
    return DigitStyle(
        digit=digit,
        font_file=FONT_FILES[int(bold)],
        stroke=stroke,
        rotation_deg=float(rng.uniform(-15.0, 15.0)),
        shear=float(rng.uniform(-0.1, 0.3)),
        aspect=float(rng.uniform(0.8, 1.15)),
        height=float(rng.uniform(0.55, 0.8)),
        pos_x=float(rng.uniform(0.25, 0.75)),
        pos_y=float(rng.uniform(0.25, 0.75)),
    )


def supersample(image_size: int) -> int:
    """The drawing canvas is ``image_size * supersample(image_size)`` wide (2 to 4 times)."""
    return max(_MIN_SUPERSAMPLE, min(_MAX_SUPERSAMPLE, _MAX_CANVAS // image_size))


@functools.cache
def _font(font_file: str, size: int) -> ImageFont.FreeTypeFont:
    """A matplotlib-shipped TrueType font at ``size`` px, loaded once per process."""
    import matplotlib  # on first use: importing matplotlib costs ~0.3 s, fonts are all we need

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / font_file
    if not path.is_file():
        raise DataError(f"{path}: font missing from matplotlib; reinstall matplotlib")
    return ImageFont.truetype(str(path), size)


def _shape_matrix(style: DigitStyle) -> np.ndarray:
    """The 2x2 pixel-space map rotate . shear . stretch of a glyph."""
    theta = math.radians(style.rotation_deg)
    # Image y grows downwards, so a counter-clockwise turn is R(-theta) in pixel coordinates.
    rotate = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    shear = np.array([[1.0, -style.shear], [0.0, 1.0]])
    stretch = np.diag([style.aspect, 1.0])
    return rotate @ shear @ stretch


def _row_extremes(ink: np.ndarray) -> np.ndarray:
    """(x, y) centres of the leftmost and rightmost ink pixel of every row of a boolean mask.

    Every vertex of the ink's convex hull is among them, so they bound the ink under any
    linear map exactly, at a fraction of the cost of mapping every pixel.
    """
    rows = np.flatnonzero(ink.any(axis=1))
    first = ink[rows].argmax(axis=1)
    last = ink.shape[1] - 1 - ink[rows, ::-1].argmax(axis=1)
    xs = np.concatenate([first, last]) + 0.5
    ys = np.concatenate([rows, rows]) + 0.5
    return np.stack([xs, ys], axis=1)


def render_masks(style: DigitStyle, canvas: int, outline: float = 0.0) -> tuple[Image.Image, ...]:
    """Coverage of the glyph on a ``canvas`` square, as mode ``"L"`` images (255 = ink).

    Returns ``(body,)``, or ``(body, body_plus_outline)`` when ``outline`` (a fraction of the
    font size) is positive. After rotation, slant and stretch the glyph's ink is scaled to
    ``style.height`` of the canvas (narrowed if it would be wider than the canvas) and placed
    inside it at ``style.pos_x, style.pos_y``.
    """
    font = _font(style.font_file, canvas)
    text = str(style.digit)
    strokes = [round(style.stroke * canvas)]
    if outline > 0:
        strokes.append(strokes[0] + max(1, round(outline * canvas)))
    left, top, right, bottom = font.getbbox(text, stroke_width=strokes[-1])
    pad = 2
    layers = []
    for stroke in strokes:
        layer = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
        ImageDraw.Draw(layer).text(
            (pad - left, pad - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
        )
        layers.append(layer)
    # Fit the ink, not the font's box: measure where the widest layer's pixels land.
    ink = np.asarray(layers[-1]) > 127
    if not ink.any():
        raise RuntimeError(f"font {style.font_file} drew nothing for digit {style.digit}")
    shape = _shape_matrix(style)
    moved = _row_extremes(ink) @ shape.T
    low, extent = moved.min(axis=0), moved.max(axis=0) - moved.min(axis=0)
    scale = min(style.height * canvas / extent[1], 0.95 * canvas / extent[0])
    # One affine per layer straight onto the canvas: out = scale * shape @ p + offset.
    offset = np.array([style.pos_x, style.pos_y]) * (canvas - scale * extent) - scale * low
    inverse = np.linalg.inv(shape) / scale
    shift = -inverse @ offset
    data = (*inverse[0], shift[0], *inverse[1], shift[1])
    return tuple(
        layer.transform((canvas, canvas), Image.AFFINE, data, Image.BICUBIC) for layer in layers
    )


def _gradient(rng: np.random.Generator, canvas: int,
              hue: tuple[float, float] = (0.0, 1.0)) -> Image.Image:
    """A ``canvas`` px RGB linear gradient between two pale colours of ``hue``, at a random
    angle."""
    hsv = zip(rng.uniform(*hue, 2), rng.uniform(*_PALE_SATURATION, 2),
              rng.uniform(*_PALE_VALUE, 2), strict=True)
    ends = np.array([colorsys.hsv_to_rgb(*c) for c in hsv]) * 255.0
    angle = rng.uniform(0.0, 2 * math.pi)
    ys, xs = np.mgrid[0:canvas, 0:canvas] / max(canvas - 1, 1) - 0.5
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-9)
    rgb = ends[0] * (1 - t[..., None]) + ends[1] * t[..., None]
    return Image.fromarray(np.round(rgb).astype(np.uint8), mode="RGB")


def _saturated_colours(rng: np.random.Generator, n: int,
                       hue: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``n`` random vivid RGB colours of ``hue``, float in [0, 255]."""
    hsv = zip(
        rng.uniform(*hue, n), rng.uniform(0.7, 1.0, n), rng.uniform(0.85, 1.0, n), strict=True
    )
    return np.array([colorsys.hsv_to_rgb(*c) for c in hsv]) * 255.0


def pick_colour(candidates: np.ndarray, local_mean: np.ndarray) -> np.ndarray:
    """The first candidate at least ``_MIN_COLOUR_DISTANCE`` from ``local_mean``, else the farthest.

    Taking the first rather than the farthest keeps every hue in play; the farthest of a
    handful of saturated colours from a pale orange background would nearly always be blue.
    """
    distance = np.linalg.norm(candidates - local_mean, axis=1)
    far_enough = np.flatnonzero(distance >= _MIN_COLOUR_DISTANCE)
    return candidates[far_enough[0] if far_enough.size else int(np.argmax(distance))]


def render_digit(rng: np.random.Generator, domain: str, image_size: int,
                 palette: str = "fixed") -> tuple[Image.Image, int]:
    """One ``image_size`` RGB image of ``domain`` ``"A"`` or ``"B"`` and the digit it shows;
    ``palette`` chooses B's colours (module docstring)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    _check_palette(palette)
    style = sample_style(rng)
    canvas = image_size * supersample(image_size)
    if domain == "A":
        (body,) = render_masks(style, canvas)
        return body.resize((image_size, image_size), Image.LANCZOS).convert("RGB"), style.digit
    # A dark outline of 2.5-4.5% of the frame (about one pixel at 32 px) around the colour.
    body, ring = render_masks(style, canvas, outline=float(rng.uniform(0.025, 0.045)))
    fill_hue, background_hue = _HUES[palette]
    img = _gradient(rng, canvas, background_hue)
    background = np.asarray(img, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    colour = pick_colour(_saturated_colours(rng, _N_COLOUR_CANDIDATES, fill_hue), background)
    img.paste((0, 0, 0), (0, 0, canvas, canvas), ring)
    img.paste(tuple(int(round(c)) for c in colour), (0, 0, canvas, canvas), body)
    return img.resize((image_size, image_size), Image.LANCZOS), style.digit


def _check_args(seed: int, image_size: int, train_per_domain: int, test_per_domain: int) -> None:
    """Raise ValueError on arguments the generator cannot honour."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
    counts = {"train_per_domain": train_per_domain, "test_per_domain": test_per_domain}
    for name, count in counts.items():
        if count < 1:
            raise ValueError(f"{name} must be >= 1, got {count}")


def generate_digits(
    out_dir: Path,
    *,
    seed: int,
    image_size: int,
    train_per_domain: int,
    test_per_domain: int,
    palette: str = "fixed",
) -> dict[str, Any]:
    """Write ``out_dir/{trainA,trainB,testA,testB}/NNNNN.png`` and ``out_dir/labels.csv``.

    Same arguments give byte-identical files. On an exception everything this call created
    is removed again (the caller makes the whole folder atomic). Returns a JSON-able summary:
    ``{"dataset", "seed", "image_size", "counts", "labels", "digit_counts"}`` where
    ``digit_counts[folder][d]`` is how many images of that folder show digit ``d``.
    """
    _check_args(seed, image_size, train_per_domain, test_per_domain)
    _check_palette(palette)
    out_dir = Path(out_dir)
    targets = [out_dir / folder for folder in FOLDERS] + [out_dir / LABELS_FILE]
    clashes = [str(path) for path in targets if path.exists()]
    if clashes:
        raise FileExistsError(f"digits would overwrite {', '.join(clashes)}")
    made_root = not out_dir.exists()
    counts = {"train": train_per_domain, "test": test_per_domain}
    rows: list[tuple[str, str, str, int]] = []
    digit_counts: dict[str, list[int]] = {}
    try:
        for split_index, split in enumerate(SPLITS):
            for domain_index, domain in enumerate(DOMAINS):
                folder = f"{split}{domain}"
                (out_dir / folder).mkdir(parents=True)
                histogram = [0] * 10
                stream = np.random.SeedSequence([seed, split_index, domain_index])
                for index, child in enumerate(stream.spawn(counts[split])):
                    img, digit = render_digit(np.random.default_rng(child), domain, image_size,
                                              palette)
                    name = f"{index:05d}.png"
                    img.save(out_dir / folder / name, format="PNG")
                    rows.append((split, domain, f"{folder}/{name}", digit))
                    histogram[digit] += 1
                digit_counts[folder] = histogram
        with open(out_dir / LABELS_FILE, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("split", "domain", "file", "digit"))
            writer.writerows(rows)
    except BaseException:
        if made_root:
            targets.append(out_dir)
        for path in targets:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
    return {
        "dataset": "digits",
        "seed": seed,
        "image_size": image_size,
        "palette": palette,
        "counts": {f"{split}{domain}": counts[split] for split in SPLITS for domain in DOMAINS},
        "labels": LABELS_FILE,
        "digit_counts": digit_counts,
    }
