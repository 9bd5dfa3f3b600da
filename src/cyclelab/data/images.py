"""Decode, convert and resize one image: the pure pixel helpers of the ``prepare`` stage.

Everything here works on bytes or ``PIL.Image`` objects and touches no files, so each helper is
testable with a few pixels. The order of use is :func:`decode` (bytes -> checked, oriented
image), :func:`to_rgb` (any mode -> 8-bit RGB), then a resize policy from
:data:`RESIZE_POLICIES` (RGB -> ``size`` x ``size``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cyclelab.errors import DataError

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)

# Resampling for every size change: Lanczos is antialiased, so a 256 -> 32 reduction averages
# each 8x8 block instead of sampling one pixel of it (which aliases textures such as zebra
# stripes). ``reducing_gap`` first box-reduces by an integer factor while the remaining ratio
# stays >= 3: Pillow documents the result as indistinguishable from a full Lanczos pass, and it
# is much faster on multi-megapixel photos.
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0

# Skip reasons, the keys the stage summary counts by.
EMPTY = "empty file"
NOT_IMAGE = "not an image"
CORRUPT = "truncated or corrupt"
TOO_LARGE = "too large"
TOO_SMALL = "too small"
UNSUPPORTED = "unsupported mode"


@dataclass(frozen=True)
class Header:
    """What the file header says, before any pixel is decoded."""

    width: int
    height: int
    mode: str
    format: str


class Rejected(Exception):
    """An input file that cannot become a training image; ``reason`` is one of the reasons above."""

    def __init__(self, reason: str, detail: str, header: Header | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.header = header


@contextlib.contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Make Pillow's own decompression-bomb guard use ``max_pixels`` (None: off) and raise.

    Pillow checks sizes inside some decoders too (GIF frames, ICO entries), after our header
    check; with its default limit (~89 MP) it would warn for images the user allowed and reject
    every image above ~179 MP whatever ``data.max_image_pixels`` says.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def decode(
    data: bytes, *, max_pixels: int, min_side: int
) -> tuple[Header, Image.Image]:
    """Decode image file bytes into a fully loaded, EXIF-oriented image.

    The header's width x height is compared with ``max_pixels`` before any pixel is decoded
    (a 100000 x 100000 PNG of a few bytes would otherwise allocate 30 GB). Raises
    :class:`Rejected` for empty, non-image, truncated, corrupt, too large or too small input.
    """
    if not data:
        raise Rejected(EMPTY, "0 bytes")
    try:
        with _pixel_limit(None):
            # Opening parses the header only. Pillow's guard would refuse a bomb here without
            # saying its size; the check below is the same comparison and records the header.
            img = Image.open(io.BytesIO(data))
        header = Header(img.width, img.height, img.mode, img.format or "")
        pixels = header.width * header.height
        if pixels > max_pixels:
            raise Rejected(TOO_LARGE, f"{header.width}x{header.height} = {pixels} pixels "
                                      f"> data.max_image_pixels = {max_pixels}", header)
        if min(header.width, header.height) < min_side:
            raise Rejected(TOO_SMALL, f"{header.width}x{header.height}, a side "
                                      f"< data.min_image_size = {min_side}", header)
        with _pixel_limit(max_pixels):
            img.load()
            # Cameras store portrait shots as landscape pixels plus an orientation tag.
            img = ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise Rejected(NOT_IMAGE, "no image format recognises the content") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected(TOO_LARGE, str(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        # Pillow reports damaged data with any of these, depending on the format plugin.
        raise Rejected(CORRUPT, f"{type(exc).__name__}: {exc}") from None
    return header, img


def _scale_16bit(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) grayscale -> 8-bit ``L``, scaling 0..65535 to 0..255.

    Pillow's own ``convert("L")`` clips these modes at 255, which turns a 16-bit photo white.
    """
    values = np.asarray(img, dtype=np.float64)
    scaled = np.clip(values, 0, 65535) / 257.0  # 65535 / 257 == 255 exactly
    return Image.fromarray(np.rint(scaled).astype(np.uint8))


def _scale_float(img: Image.Image) -> Image.Image:
    """Float grayscale (``F``) -> ``L``: values in [0, 1] are scaled, larger ones read as 0..255."""
    values = np.asarray(img, dtype=np.float64)
    if np.nanmax(values, initial=0.0) <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.rint(np.clip(np.nan_to_num(values), 0, 255)).astype(np.uint8))


# Modes whose values Pillow's convert() would clip rather than scale. 16-bit RGB PNGs need no
# entry: Pillow decodes them to RGB by keeping each sample's high byte (v >> 8), a scaling that
# differs from round(v / 257) by at most one level.
_GRAY_SCALERS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "I;16": _scale_16bit,
    "I;16L": _scale_16bit,
    "I;16B": _scale_16bit,
    "I;16N": _scale_16bit,
    "I": _scale_16bit,
    "F": _scale_float,
}

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def has_alpha(img: Image.Image) -> bool:
    """Whether ``img`` carries transparency (an alpha band or a PNG/GIF transparency entry)."""
    return img.mode in _ALPHA_MODES or "transparency" in img.info


def to_rgb(img: Image.Image, matte: Color = WHITE) -> Image.Image:
    """Any Pillow mode -> 8-bit 3-channel RGB.

    Transparent pixels are composited on ``matte`` (white by default): dropping the alpha band
    instead would expose whatever colour the encoder left under it, often black. CMYK uses
    Pillow's conversion (Adobe-inverted JPEGs are handled by the decoder). Raises
    :class:`Rejected` for a mode Pillow cannot convert.
    """
    scaler = _GRAY_SCALERS.get(img.mode)
    if scaler is not None:
        img = scaler(img)
    try:
        if has_alpha(img):
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (*matte, 255))
            return Image.alpha_composite(canvas, rgba).convert("RGB")
        return img if img.mode == "RGB" else img.convert("RGB")
    except ValueError as exc:  # a mode Pillow cannot convert to RGB (e.g. LAB, HSV)
        raise Rejected(UNSUPPORTED, f"{img.mode}: {exc}") from None


def pixel_hash(img: Image.Image) -> str:
    """sha256 of the decoded pixels and size: equal for lossless re-encodings of one image."""
    digest = hashlib.sha256(f"{img.mode} {img.width}x{img.height}\n".encode())
    digest.update(img.tobytes())
    return digest.hexdigest()


def _resize_squash(img: Image.Image, size: int, pad_color: Color) -> Image.Image:
    """Scale both sides to ``size``, changing the aspect ratio (the CycleGAN paper's loader)."""
    return img.resize((size, size), RESAMPLE, reducing_gap=REDUCING_GAP)


def _resize_center_crop(img: Image.Image, size: int, pad_color: Color) -> Image.Image:
    """Cut the central square of side min(width, height), then scale it to ``size``."""
    side = min(img.width, img.height)
    left = (img.width - side) // 2
    top = (img.height - side) // 2
    # Crop first, then resize: resizing with a source box would let the filter's support read
    # pixels outside the square and bleed the cut-off content into the border.
    square = img.crop((left, top, left + side, top + side))
    return square.resize((size, size), RESAMPLE, reducing_gap=REDUCING_GAP)


def _resize_pad(img: Image.Image, size: int, pad_color: Color) -> Image.Image:
    """Letterbox: scale the longer side to ``size`` and centre the image on ``pad_color``."""
    scale = size / max(img.width, img.height)
    width = max(1, round(img.width * scale))
    height = max(1, round(img.height * scale))
    scaled = img.resize((width, height), RESAMPLE, reducing_gap=REDUCING_GAP)
    canvas = Image.new("RGB", (size, size), pad_color)
    canvas.paste(scaled, ((size - width) // 2, (size - height) // 2))
    return canvas


def _pad_only(img: Image.Image, size: int, pad_color: Color) -> Image.Image:
    """Centre the image unscaled on a ``size`` x ``size`` canvas of ``pad_color`` (seed 003
    zero-pads 28 px MNIST to 32 px: every digit pixel kept as it is). An odd margin puts the
    extra pixel right and below. A side larger than ``size`` is a :class:`DataError`: cropping
    would cut content silently, and scaling is what ``pad`` does."""
    if img.width > size or img.height > size:
        raise DataError(f"{img.width}x{img.height} is larger than data.image_size = {size}, and "
                        "data.resize: pad_only never scales or crops; use data.resize: pad, "
                        "center_crop or resize, or a larger data.image_size")
    canvas = Image.new("RGB", (size, size), pad_color)
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


ResizePolicy = Callable[[Image.Image, int, Color], Image.Image]

# ``data.resize`` -> policy(img_rgb, size, pad_color) -> size x size RGB image.
RESIZE_POLICIES: dict[str, ResizePolicy] = {
    "resize": _resize_squash,
    "center_crop": _resize_center_crop,
    "pad": _resize_pad,
    "pad_only": _pad_only,
}


def fill_color(policy: str, background_color: Color, pad_color: Color) -> Color:
    """The colour ``policy`` pads with: ``data.pad_color`` for ``pad_only`` (zero padding by
    default), ``data.background_color`` for ``pad`` (letterboxing)."""
    return pad_color if policy == "pad_only" else background_color


def resize(img: Image.Image, size: int, policy: str, pad_color: Color = WHITE) -> Image.Image:
    """Apply the resize policy named ``policy`` (a key of :data:`RESIZE_POLICIES`); ``pad_color``
    is what :func:`fill_color` gives for it."""
    return RESIZE_POLICIES[policy](img, size, pad_color)


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of ``img`` (lossless, so training sees exactly the prepared pixels)."""
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()
