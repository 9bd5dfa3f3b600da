"""Weight initialisation (``model.init``) and weight transfer between networks."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from cyclelab.directions import DIRECTIONS, GENERATORS
from cyclelab.errors import DataError


def _normal(w: torch.Tensor, gain: float) -> None:
    nn.init.normal_(w, 0.0, gain)


def _xavier(w: torch.Tensor, gain: float) -> None:
    nn.init.xavier_normal_(w, gain=gain)


def _kaiming(w: torch.Tensor, gain: float) -> None:
    # He et al.'s fan-in scale, as the official code: no gain to apply (config.py refuses a
    # model.init_gain other than the default with kaiming, so batch-norm scales get N(1, 0.02)).
    nn.init.kaiming_normal_(w, a=0, mode="fan_in")


def _orthogonal(w: torch.Tensor, gain: float) -> None:
    nn.init.orthogonal_(w, gain=gain)


INITS: dict[str, Callable[[torch.Tensor, float], None]] = {
    "normal": _normal, "xavier": _xavier, "kaiming": _kaiming, "orthogonal": _orthogonal,
}


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights by ``kind``, biases to 0, norm scales N(1, gain) (the
    paper's code)."""
    init_fn = INITS[kind]
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            # Spectral norm keeps the raw weight as a parametrization's ``original``.
            weight = (module.parametrizations.weight.original
                      if parametrize.is_parametrized(module, "weight") else module.weight)
            init_fn(weight, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net


# ``ae.init_from``: which domain's autoencoder generator starts each CycleGAN generator.
# ``target``: G_ab (A -> B) starts from domain B's, a network that already outputs B images.
# ``source``: G_ab starts from domain A's, a near-identity on its own input. Seed 000 says it
# loads "the trained decoder models into generator's A and B e.g. apple and oranges"; in the
# official code it extended, netG_A maps A -> B, so its words read as ``source``; its results
# cannot tell which, and ``target`` (the default) is the reading this project began with.
AE_INIT_DOMAINS: dict[str, dict[str, str]] = {
    "target": {d.generator: d.target for d in DIRECTIONS},
    "source": {d.generator: d.source for d in DIRECTIONS},
}


def ae_domain(generator: str, init_from: str) -> str:
    """The domain whose autoencoder initialises ``generator`` (``G_ab`` or ``G_ba``)."""
    return AE_INIT_DOMAINS[init_from][generator]


def load_weights(net: nn.Module, path: str | Path, producer: str) -> nn.Module:
    """Load the state dict at ``path`` into ``net``; DataError naming the stage that makes it
    (``producer``) when the file is missing."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: missing; run {producer} first (dvc repro)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        # Truncated, overwritten, or not plain tensors (weights_only refuses pickled code).
        raise DataError(f"{path}: corrupt or not a weights file ({type(exc).__name__}); rerun "
                        f"{producer} (dvc repro -f -s {producer})") from None
    load_matching(net, state, str(path))
    return net


def load_matching(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``net``, requiring identical keys and shapes (a clear error if the
    generator in params differs from the one the weights came from)."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or extra or bad:
        first = (missing or extra or bad)[0]
        raise DataError(f"{source}: weights do not fit the generator in params.yaml "
                        f"({len(missing)} of {len(own)} tensors missing, {len(extra)} extra, "
                        f"{len(bad)} of another shape; first: {first}); rerun the stage that "
                        f"produced them (dvc repro)")
    net.load_state_dict(state, strict=True)


INIT_FILE = "init.json"


def write_init(init: str, init_from: str, out_dir: str | Path) -> str:
    """Write a variant's starting generators to ``out_dir`` (stage ``init@<variant>``); return a
    sentence for the log. ``init: ae`` copies each generator's autoencoder weights
    (:data:`AE_INIT_DOMAINS`); ``init: random`` writes only ``init.json``, the same bytes every
    time, so its training stage stays up to date when the autoencoders change."""
    import json
    import shutil

    from cyclelab import paths
    from cyclelab.io import atomic_dir, sha256_file

    record: dict = {"init": init}
    with atomic_dir(out_dir) as tmp:
        if init == "ae":
            record["init_from"] = init_from
            for name in GENERATORS:
                domain = ae_domain(name, init_from)
                source = paths.ae_dir(domain) / "generator.pt"
                if not source.is_file():
                    raise DataError(f"{source}: missing; run pretrain_ae@{domain} first "
                                    "(dvc repro)")
                shutil.copyfile(source, tmp / f"{name}.pt")
                record[name] = {"from": source.as_posix(), "sha256": sha256_file(source)}
        (tmp / INIT_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    if init != "ae":
        return f"{init} init: nothing to copy"
    return ", ".join(f"{name} from {record[name]['from']}" for name in GENERATORS)
