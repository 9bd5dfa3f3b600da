"""Background removal for ``prepare`` (seed 004): ``data.background`` = ``none`` | ``rembg``.

A remover is a function RGB image -> RGB image, built once per process by
:func:`make_background_remover` (an ONNX session costs a model load; the stage builds one in
each worker's initializer, never one per image). ``rembg`` predicts a foreground mask and the
image is composited on ``data.background_color`` with it. ``data.background_domains`` names the
domains whose images go through it (seeds/004 task 2: the animal photos only; the sprites
already sit on white).

``data.rembg_model`` is any local rembg model name (``u2net``, ``u2netp``, ``isnet-general-use``,
``birefnet-general``, ...). rembg downloads a named model on first use into ``$U2NET_HOME`` (or
``~/.u2net``). The ``*_custom`` models load an ONNX file of your own: its path comes from the
``model_path`` argument or the environment variable ``CYCLELAB_REMBG_MODEL_PATH``, and rembg
only accepts files inside its models folder (``$U2NET_HOME``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import reduce
from typing import Any

from PIL import Image, ImageChops

from cyclelab.errors import ConfigError, DataError

Color = tuple[int, int, int]
Remover = Callable[[Image.Image], Image.Image]

ENV_MODEL_PATH = "CYCLELAB_REMBG_MODEL_PATH"

# Models rembg runs but the stage cannot use: SAM segments around prompt points the stage has
# no way to supply.
_UNUSABLE = {"sam": "it needs prompt points per image"}


def composite_on_color(img: Image.Image, mask: Image.Image, color: Color) -> Image.Image:
    """``img * mask + color * (1 - mask)`` per pixel; ``mask`` is ``L`` (255 = foreground).

    rembg's own ``remove(bgcolor=...)`` multiplies the colour by the mask twice (a naive cutout,
    then an alpha composite), darkening soft edges; compositing once keeps them true.
    """
    background = Image.new("RGB", img.size, color)
    return Image.composite(img.convert("RGB"), background, mask.convert("L"))


def _rembg_session_class(model: str) -> Any:
    """rembg's session class for ``model``; :class:`ConfigError` listing usable names if none."""
    from rembg.sessions import sessions

    usable = sorted(name for name, cls in sessions.items()
                    if cls.is_local() and name not in _UNUSABLE)
    if model in _UNUSABLE:
        raise ConfigError(f"data.rembg_model: {model!r} cannot be used here: {_UNUSABLE[model]}")
    cls = sessions.get(model)
    if cls is not None and not cls.is_local():
        # A remote backend would upload every image of the dataset to a third party.
        raise ConfigError(f"data.rembg_model: {model!r} sends images to a remote service; "
                          f"pick a local model: {', '.join(usable)}")
    if cls is None:
        raise ConfigError(f"data.rembg_model: got {model!r}, allowed: {', '.join(usable)}")
    return cls


def model_kwargs(model: str, model_path: str | None = None) -> dict[str, str]:
    """The keyword arguments rembg needs for ``model``: ``model_path`` for ``*_custom`` models.

    The path is ``model_path`` if given, else ``$CYCLELAB_REMBG_MODEL_PATH``.
    """
    if not model.endswith("_custom"):
        return {}
    path = model_path or os.environ.get(ENV_MODEL_PATH, "")
    if not path:
        raise ConfigError(f"data.rembg_model: {model!r} loads your own ONNX file: set "
                          f"{ENV_MODEL_PATH} to its path (inside $U2NET_HOME)")
    return {"model_path": str(path)}


def fetch_model(model: str, model_path: str | None = None) -> str:
    """Check ``model`` and make its weights available locally (downloading them if needed).

    Called once in the main process before workers start, so that workers do not race to
    download the same file. Returns the local model file.
    """
    cls = _rembg_session_class(model)
    kwargs = model_kwargs(model, model_path)
    try:
        local = cls.download_models(**kwargs)
    except ValueError as exc:  # rembg's refusal of a custom path outside its models folder
        raise ConfigError(f"{ENV_MODEL_PATH}={kwargs.get('model_path')}: {exc} "
                          "(move the file there or set U2NET_HOME to its folder)") from None
    except OSError as exc:  # network failures (requests' errors are OSErrors) and disk errors
        raise DataError(f"rembg model {model!r}: download failed ({exc}); check the network "
                        f"or fetch it beforehand with `rembg d {model}`") from None
    if not os.path.isfile(local):
        raise DataError(f"rembg model {model!r}: {local} does not exist; fix "
                        f"{ENV_MODEL_PATH} or fetch the model with `rembg d {model}`")
    return str(local)


def _no_background(**_: Any) -> Remover:
    """``data.background: none``: images pass through unchanged."""
    return lambda img: img


def _rembg_background(
    *, model: str, color: Color, model_path: str | None = None, threads: int = 0
) -> Remover:
    """``data.background: rembg``: one rembg session; each image composited on ``color``."""
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
    from rembg.session_factory import new_session

    fetch_model(model, model_path)
    options = ort.SessionOptions()
    # With one session per worker process, 1 thread each keeps the cores from being
    # oversubscribed; 0 lets onnxruntime use every core (the in-process path).
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1 if threads else 0
    try:
        session = new_session(model, sess_opts=options, **model_kwargs(model, model_path))
    except (OSError, ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.NoSuchFile,
            ort_errors.InvalidArgument) as exc:  # onnxruntime's types for unusable model files
        raise DataError(f"rembg model {model!r}: cannot load it ({type(exc).__name__}: {exc}); "
                        "delete the file to download it again or fix the custom model") from None

    def remove_background(img: Image.Image) -> Image.Image:
        masks = session.predict(img)
        # Multi-class models (u2net_cloth_seg) give one mask per class: keep their union.
        mask = reduce(ImageChops.lighter, masks)
        return composite_on_color(img, mask, color)

    return remove_background


# ``data.background`` -> factory(model=, color=, model_path=, threads=) -> remover.
BACKGROUNDS: dict[str, Callable[..., Remover]] = {
    "none": _no_background,
    "rembg": _rembg_background,
}


def make_background_remover(
    kind: str,
    *,
    model: str = "u2net",
    color: Color = (255, 255, 255),
    model_path: str | None = None,
    threads: int = 0,
) -> Remover:
    """Build the remover named ``kind`` (a key of :data:`BACKGROUNDS`), once per process."""
    return BACKGROUNDS[kind](model=model, color=tuple(color), model_path=model_path,
                             threads=threads)
