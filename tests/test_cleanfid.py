"""Our FID against clean-fid's on the same two folders, with the same network (issue 6).

clean-fid's ``legacy_tensorflow`` mode leaves the images at their size (NVIDIA's network
resizes inside) and hands the extractor float32 N×3×H×W batches holding the uint8 values in
[0, 255]. Given our network behind our preprocessing, what differs between the two paths is
everything around the network: file decoding and batching, the statistics, and the distance
(``scipy.linalg.sqrtm`` there, eigenvalues here).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclelab.data.dataset import load_folder
from cyclelab.metrics import extract_features, fid_from_stats, load_inception, reference_stats
from cyclelab.metrics.inception import preprocess

cleanfid = pytest.importorskip("cleanfid.fid", reason="clean-fid is not installed "
                               "(.venv/bin/pip install -e '.[dev]')")

N_IMAGES = 20  # per folder; the real network runs at ~7 images/s on 2 cores
SIZE = 32


def _write_folder(folder, rng: np.random.Generator, smooth: bool) -> None:
    """``N_IMAGES`` PNGs: noise, or smooth colour gradients with a little noise."""
    folder.mkdir()
    ramp = np.linspace(0.0, 1.0, SIZE)
    for i in range(N_IMAGES):
        if smooth:
            colour = rng.uniform(0, 255, size=3)
            img = (np.outer(ramp, ramp)[..., None] * colour
                   + rng.normal(0, 8, size=(SIZE, SIZE, 3)))
        else:
            img = rng.uniform(0, 255, size=(SIZE, SIZE, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


# ~30 s of CPU, most of it clean-fid's scipy.linalg.sqrtm of a 2048×2048 product.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:cleanfid")  # its sqrtm(disp=False)
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # singular: 20 < 2048 images
def test_fid_agrees_with_clean_fid_legacy_tensorflow(tmp_path):
    rng = np.random.default_rng(0)
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    _write_folder(dir_a, rng, smooth=False)
    _write_folder(dir_b, rng, smooth=True)
    net = load_inception(device="cpu")

    def our_network(batch_0_255: torch.Tensor) -> torch.Tensor:
        # ToTensor()·255 can leave the integers a float ulp off: round back to the uint8 values.
        img_uint8 = batch_0_255.round().clamp(0, 255).to(torch.uint8)
        return net.module(preprocess(img_uint8)).reshape(len(batch_0_255), -1)

    theirs = cleanfid.compute_fid(str(dir_a), str(dir_b), mode="legacy_tensorflow",
                                  custom_feat_extractor=our_network, device=torch.device("cpu"),
                                  num_workers=0, batch_size=N_IMAGES, verbose=False)
    stats = [reference_stats(extract_features(net, load_folder(folder), batch_size=N_IMAGES),
                             net.sha256) for folder in (dir_a, dir_b)]
    ours = fid_from_stats(*stats)
    assert ours > 10.0  # two clearly different sets: the comparison is not 0 against 0
    assert abs(ours - theirs) < 1e-3, (ours, theirs)
