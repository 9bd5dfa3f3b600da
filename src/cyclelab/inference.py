"""Using a trained generator outside the pipeline: load it, translate image files, export it.

Images go through the ``prepare`` stage's own helpers (:mod:`cyclelab.data.images`: decode with
the same size guards, convert to RGB, background removal, resize policy to ``data.image_size``),
so a generator sees what it was trained on. Translations are written as ``data.image_size``
PNGs (or any format Pillow knows by the output's suffix).

Exported networks take and return float N×3×S×S images in [-1, 1] (``img / 127.5 − 1``),
S = ``data.image_size``; ONNX files have a dynamic batch dimension.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from cyclelab import paths
from cyclelab.config import DataConfig, ModelConfig
from cyclelab.data import images
from cyclelab.data.background import Remover, make_background_remover
from cyclelab.data.dataset import to_m11, to_uint8
from cyclelab.data.prepare import output_names
from cyclelab.directions import BY_CLI
from cyclelab.errors import DataError
from cyclelab.io import atomic_path
from cyclelab.models.build import build_generator
from cyclelab.models.init import load_weights

ONNX_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "img_m11", "translated_m11"


def generator_path(variant: str, seed: int, direction: str) -> Path:
    """The weights file of ``direction``'s generator in one trained run."""
    return paths.model_dir(variant, seed) / f"{BY_CLI[direction].generator}.pt"


def load_generator(model_cfg: ModelConfig, variant: str, seed: int, direction: str, *,
                   image_size: int) -> nn.Module:
    """The trained generator of ``direction`` (CPU, eval mode), built for ``image_size``
    (``data.image_size``, which sets the U-Net's depth, as in training); DataError with the fix
    if the run was not trained. Weights load with ``torch.load(weights_only=True)`` (no pickled
    code)."""
    path = generator_path(variant, seed, direction)
    producer = f"train@{variant}-{seed}"
    if not path.is_file():
        raise DataError(f"{path}: no trained model for variant {variant!r} seed {seed}; "
                        f"run `dvc repro {producer}`")
    return load_weights(build_generator(model_cfg, image_size), path, producer).eval()


# ---------------------------------------------------------------- translate


@dataclass
class Plan:
    """Input files and the output path of each; ``skipped`` collects ``(file, reason)``."""

    sources: list[Path]
    targets: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in Image.registered_extensions()


def plan(source: str | Path, target: str | Path) -> Plan:
    """What to read and where to write.

    A file in: ``target`` is the output file, or a folder (existing, or named with a trailing
    slash) that receives ``<stem>.png``. A folder in: every file directly inside it (hidden
    ones aside), written to ``target/<stem>.png`` with the ``prepare`` stage's unique names.
    """
    source, target_str = Path(source), str(target)
    target = Path(target)
    if source.is_file():
        if target.is_dir() or target_str.endswith(("/", "\\")):
            return Plan([source], [target / output_names([source.name])[0]])
        if not _is_image_name(target):
            raise DataError(f"{target}: not an image file name (use .png, .jpg, ...) nor an "
                            "existing folder; end it with / to create a folder")
        return Plan([source], [target])
    if not source.is_dir():
        raise DataError(f"{source}: no such file or folder")
    if target.exists() and not target.is_dir():
        raise DataError(f"{target}: exists and is not a folder; a folder of images needs an "
                        "output folder")
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"{source}: the folder has no files")
    return Plan(files, [target / name for name in output_names([f.name for f in files])])


def read_image(path: Path, data_cfg: DataConfig, remove_background: Remover) -> Image.Image:
    """One file as the ``prepare`` stage would make it: RGB, ``data.image_size`` square.

    Raises :class:`~cyclelab.data.images.Rejected` for a file that is not a usable image.
    """
    _, img = images.decode(path.read_bytes(), max_pixels=data_cfg.max_image_pixels,
                           min_side=data_cfg.min_image_size)
    img_rgb = remove_background(images.to_rgb(img))
    fill = images.fill_color(data_cfg.resize, tuple(data_cfg.background_color),
                             tuple(data_cfg.pad_color))
    return images.resize(img_rgb, data_cfg.image_size, data_cfg.resize, fill)


@torch.no_grad()
def translate_batch(net: nn.Module, img_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 N×3×H×W -> the generator's uint8 N×3×H×W, on the network's device."""
    device = next(net.parameters()).device
    return to_uint8(net(to_m11(img_uint8.to(device))).float().cpu())


def translate_files(net: nn.Module, todo: Plan, data_cfg: DataConfig, *, domain: str,
                    batch_size: int = 16, progress: bool | None = None) -> int:
    """Translate ``todo.sources``, images of ``domain`` (the direction's source, ``A`` or
    ``B``), into ``todo.targets``; return how many were written.

    Their background is removed as ``prepare`` removed it from that domain's images
    (``data.background`` on the domains ``data.background_domains`` names). Files that are not
    usable images are added to ``todo.skipped`` with the reason; if none is left, DataError.
    Each output is written atomically.
    """
    background = data_cfg.background if domain in data_cfg.background_domains else "none"
    remove_background = make_background_remover(
        background, model=data_cfg.rembg_model, color=tuple(data_cfg.background_color),
        model_path=data_cfg.rembg_model_path or None)
    pairs = list(zip(todo.sources, todo.targets, strict=True))
    written = 0
    bar = tqdm(total=len(pairs), unit="img", desc="translate",
               disable=None if progress is None else not progress)
    with bar:
        for start in range(0, len(pairs), batch_size):
            batch, outs = [], []
            for src, dst in pairs[start:start + batch_size]:
                try:
                    batch.append(np.asarray(read_image(src, data_cfg, remove_background)))
                    outs.append(dst)
                except images.Rejected as rejected:
                    todo.skipped.append((src, str(rejected)))
                except OSError as exc:
                    todo.skipped.append((src, f"unreadable: {exc}"))
            if batch:
                img_uint8 = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
                for img, dst in zip(translate_batch(net, img_uint8), outs, strict=True):
                    _save(img.permute(1, 2, 0).numpy(), dst)
                written += len(outs)
            bar.update(len(pairs[start:start + batch_size]))
    if not written:
        src, reason = todo.skipped[0]
        raise DataError(f"{src}: {reason}" if len(pairs) == 1 else
                        f"no usable image among {len(pairs)} files (first: {src}: {reason})")
    return written


def _save(img_hwc: np.ndarray, target: Path) -> None:
    with atomic_path(target) as tmp:
        # The temporary name has no image suffix: name the format by the target's.
        Image.fromarray(img_hwc).save(tmp, format=Image.registered_extensions()[
            target.suffix.lower()])


# ---------------------------------------------------------------- export


def _example(image_size: int) -> torch.Tensor:
    return torch.zeros(1, 3, image_size, image_size)


def export_torchscript(net: nn.Module, path: Path, image_size: int) -> None:
    """A TorchScript file (``torch.jit.load`` it; no cyclelab needed)."""
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, but it is what C++/mobile load.
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(net.eval())
        scripted(_example(image_size))  # fails here, not in the user's runtime, if it cannot run
        scripted.save(str(path))


def export_onnx(net: nn.Module, path: Path, image_size: int) -> None:
    """An ONNX file (opset :data:`ONNX_OPSET`) with a dynamic batch dimension, made by the
    ``torch.export``-based exporter (the legacy TorchScript one is deprecated)."""
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(net.eval(), (_example(image_size),), dynamo=True,
                                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                dynamic_shapes=({0: batch},), opset_version=ONNX_OPSET,
                                verbose=False)
    program.save(str(path))


# ``--format`` -> exporter(net, path, image_size).
EXPORTERS: dict[str, Callable[[nn.Module, Path, int], None]] = {
    "onnx": export_onnx,
    "torchscript": export_torchscript,
}


def export(net: nn.Module, fmt: str, target: str | Path, image_size: int) -> Path:
    """Write ``net`` as ``fmt`` (a key of :data:`EXPORTERS`) to ``target``, atomically."""
    target = Path(target)
    if target.is_dir():
        raise DataError(f"{target}: is a folder; give the output file name")
    with atomic_path(target) as tmp:
        EXPORTERS[fmt](net, tmp, image_size)
    return target


def describe_skipped(skipped: Sequence[tuple[Path, str]], shown: int = 3) -> str:
    """``"skipped 2: a.txt (not an image: ...); ..."`` for the command's summary line."""
    listed = "; ".join(f"{p.name} ({reason})" for p, reason in skipped[:shown])
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"skipped {len(skipped)}: {listed}{more}"
