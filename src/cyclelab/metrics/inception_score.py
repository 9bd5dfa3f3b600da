"""Inception Score (Salimans et al. 2016) and GMS = sqrt(FID / IS) (seeds/004).

IS = exp(E_x KL(p(y|x) || p(y))), computed as the original code does: the images are cut into
``splits`` consecutive parts (10 by default), p(y) is the mean of p(y|x) within a part, and the
score is the mean and std (ddof 0) of the parts' scores. It is the score of the published
network only: the 1008-way logits of the TensorFlow Inception graph of 2015-12-05. Our FID file
(``default_1.pt``) has that layer removed, so IS needs a second, user-supplied TorchScript file
(``eval.is_weights``, pinned by ``eval.is_weights_sha256``), for example torch-fidelity's
``pt_inception-2015-12-05`` converted to take our FID input: float N×3×299×299 from
:func:`~cyclelab.metrics.inception.preprocess`, output N×1008 logits.

Without that file IS and GMS are *unavailable*: the metrics return no key for them (the metrics
files stay all-numeric for DVC and MLflow) and :func:`unavailable_reason` says why, for the
report to print.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cyclelab.config import EvalConfig
from cyclelab.errors import ConfigError, DataError
from cyclelab.io import sha256_file

# torch and the networks load on first use: the report only asks unavailable_reason.
if TYPE_CHECKING:
    import torch

    from cyclelab.metrics.inception import InceptionNet

NUM_CLASSES = 1008  # the 2015-12-05 graph: 1000 ImageNet classes + 8 unused outputs
LOGITS_KEY = "class_logits"  # where a statistics dict carries them (see :func:`class_logits`)


def unavailable_reason(cfg: EvalConfig) -> str | None:
    """Why IS and GMS are not computed under ``cfg``, or None when they are."""
    if not {"is", "gms"} & set(cfg.metrics):
        return "not listed in eval.metrics"
    if not cfg.is_weights:
        return ("eval.is_weights is empty: IS needs the Inception network with its 1008-way "
                "classifier (the FID network has none)")
    return None


def load_is_network(
    path: str | Path, sha256: str = "", device: str | torch.device = "cpu"
) -> InceptionNet:
    """Verify and load the IS network (``eval.is_weights``) in eval mode on ``device``.

    A pinned ``sha256`` (``eval.is_weights_sha256``) must match; unpinned, the file's hash is
    only returned in ``.sha256``, to be recorded with the score.
    """
    import torch

    from cyclelab.metrics.inception import InceptionNet

    fix = "fix eval.is_weights / eval.is_weights_sha256"
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"IS weights {file}: file not found; {fix}")
    got, expected = sha256_file(file), sha256.strip().lower()
    if expected and got != expected:
        raise ConfigError(f"IS weights {file}: sha256 {got}, expected {expected}; {fix}")
    device = torch.device(device)
    with warnings.catch_warnings():
        # A TorchScript file has no torch.export equivalent; the notice is not actionable.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
        try:
            module = torch.jit.load(str(file), map_location=device).eval()
        except RuntimeError as exc:
            raise ConfigError(f"IS weights {file}: not a TorchScript file "
                              f"({str(exc).splitlines()[0]}); {fix}") from None
    return InceptionNet(module=module, path=file, sha256=got, device=device)


def class_logits(
    net: InceptionNet,
    images: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    batch_size: int = 25,
    progress: bool | None = None,
) -> np.ndarray:
    """N×1008 logits (float64) of uint8 RGB images, through the FID preprocessing.

    Store them in the translated set's statistics under :data:`LOGITS_KEY` for the ``is`` and
    ``gms`` metrics to find.
    """
    from cyclelab.metrics.inception import extract_features

    logits = extract_features(net, images, batch_size=batch_size, progress=progress)
    if logits.shape[1] != NUM_CLASSES:
        raise ConfigError(f"IS weights {net.path}: the network gives {logits.shape[1]} outputs "
                          f"per image, IS needs the {NUM_CLASSES} class logits; "
                          "fix eval.is_weights")
    return logits


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """IS ``(mean, std)`` over ``splits`` consecutive parts of N×C ``logits``, in float64.

    Everything stays in log space (log-softmax, log-mean-exp), so a class whose probability
    underflows to 0 adds 0 to the KL sum, where the original's ``p * log p`` gives NaN.
    """
    from scipy import special

    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be N×C, got shape {logits.shape}")
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    n = len(logits)
    if n < splits:
        raise DataError(f"IS needs at least eval.is_splits = {splits} images, got {n}; "
                        "check eval.max_images")
    scores = []
    for i in range(splits):
        log_p_yx = special.log_softmax(logits[i * n // splits:(i + 1) * n // splits], axis=1)
        log_p_y = special.logsumexp(log_p_yx, axis=0) - math.log(len(log_p_yx))  # log mean_x p(y|x)
        kl = (np.exp(log_p_yx) * (log_p_yx - log_p_y)).sum(axis=1)  # KL(p(y|x) || p(y)) per x
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def geometric_mean_score(fid: float, is_mean: float) -> float:
    """GMS = sqrt(FID / IS) (seeds/004): lower is better, 0 only for FID 0."""
    if is_mean <= 0:
        raise ValueError(f"IS must be > 0, got {is_mean}")
    return math.sqrt(fid / is_mean)


def is_score(real: dict[str, Any], fake: dict[str, Any], cfg: EvalConfig,
             seed: int) -> dict[str, float]:
    """The registered ``is`` (:mod:`cyclelab.metric_registry`) of the translations' class logits
    (``fake[LOGITS_KEY]``); ``{}`` without them (:func:`unavailable_reason` says why)."""
    if LOGITS_KEY not in fake:
        return {}
    mean, std = inception_score(fake[LOGITS_KEY], splits=cfg.is_splits)
    return {"is": mean, "is_std": std}


def gms_score(real: dict[str, Any], fake: dict[str, Any], cfg: EvalConfig,
              seed: int) -> dict[str, float]:
    """The registered ``gms``: :func:`geometric_mean_score` of FID and IS; ``{}`` without the
    class logits."""
    if LOGITS_KEY not in fake:
        return {}
    is_mean, _ = inception_score(fake[LOGITS_KEY], splits=cfg.is_splits)
    from cyclelab.metrics.fid import fid_from_stats

    return {"gms": geometric_mean_score(fid_from_stats(real, fake), is_mean)}
