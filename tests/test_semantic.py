"""Tests for the semantic scores (cyclelab.metrics.semantic) and the labels they read.

One module-scoped classifier, trained on a few hundred digits drawn by the embedded generator,
serves the label-accuracy tests; paired and segmentation scores use hand-built images.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclelab.catalogue import CATALOGUE
from cyclelab.config import ClassifierConfig, DataConfig
from cyclelab.data.digits import generate_digits, render_digit
from cyclelab.data.download import download_dataset
from cyclelab.data.prepare import prepare_dataset
from cyclelab.data.sources import read_idx_labels, read_svhn_labels
from cyclelab.errors import DataError
from cyclelab.metrics import semantic
from cyclelab.metrics.semantic import (
    load_classifier,
    pair_key,
    save_classifier,
    semantic_scores,
)
from cyclelab.paths import LABELS_FILE
from cyclelab.runtime import make_runtime
from cyclelab.training.classifier import fit_domain, train_classifier

RUNTIME = make_runtime("cpu")
SIZE = 32
FAST = ClassifierConfig(epochs=6, lr=3.0e-3, batch_size=16, width=32, max_shift=2)


def save_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_labels(prepared: Path, labels: dict[str, int]) -> None:
    with open(prepared / LABELS_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("split", "domain", "file", "label"))
        for file, label in sorted(labels.items()):
            folder = file.split("/")[0]
            writer.writerow((folder[:-1], folder[-1], file, label))


def folder_tensor(folder: Path) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
                        for p in sorted(folder.glob("*.png"))])


# ---------------------------------------------------------------------------- label accuracy

@pytest.fixture(scope="module")
def digits_prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A prepared folder of white-on-black digits in both domains, B's test labels copied to A
    (so the real test B images are a perfect A -> B translation), and a classifier for B."""
    root = tmp_path_factory.mktemp("semantic")
    prepared, classifiers = root / "prepared", root / "classifier"
    labels: dict[str, int] = {}
    rng = np.random.default_rng(0)
    for folder, count in (("trainB", 240), ("testB", 60)):
        for index in range(count):
            img, digit = render_digit(rng, "A", SIZE)
            save_png(prepared / folder / f"{index:05d}.png", np.asarray(img))
            labels[f"{folder}/{index:05d}.png"] = digit
    for index in range(60):  # test A: its images do not matter here, only its labels
        save_png(prepared / "testA" / f"{index:05d}.png", np.zeros((SIZE, SIZE, 3), np.uint8))
        labels[f"testA/{index:05d}.png"] = labels[f"testB/{index:05d}.png"]
    write_labels(prepared, labels)
    model, meta = fit_domain(prepared, "B", FAST, RUNTIME, seed=0)
    (classifiers / "B").mkdir(parents=True)
    save_classifier(model, meta, classifiers / "B")
    return prepared, classifiers, meta


def test_classifier_learns_digits_quickly(digits_prepared) -> None:
    prepared, classifiers, meta = digits_prepared
    assert meta["labels"] and meta["n_train"] == 240 and meta["n_test"] == 60
    assert meta["n_classes"] == 10
    assert meta["test_accuracy"] >= 0.85, meta
    assert meta["chance"] < 0.3
    model, loaded = load_classifier(classifiers / "B", RUNTIME)
    assert loaded == meta
    state = torch.load(classifiers / "B" / "model.pt", weights_only=True)
    assert set(state) == set(model.state_dict())


def test_classifier_training_is_seeded(digits_prepared) -> None:
    prepared, _, _ = digits_prepared
    images = folder_tensor(prepared / "trainB")[:64]
    labels = semantic.folder_labels(prepared, "trainB")[1][:64]
    cfg = ClassifierConfig(epochs=1, batch_size=16, width=8)
    first, _ = train_classifier(images, labels, cfg, RUNTIME, seed=3)
    second, _ = train_classifier(images, labels, cfg, RUNTIME, seed=3)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key


def test_classifier_trains_by_the_shared_loop_without_a_checkpoint(
        digits_prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import math

    from cyclelab.training import classifier as training

    prepared, _, _ = digits_prepared
    images = folder_tensor(prepared / "trainB")[:33]
    labels = semantic.folder_labels(prepared, "trainB")[1][:33]
    batches = training.LabelledBatches(images, torch.as_tensor(labels), 16, 2, seed=1)
    first, again, other = list(batches(1)), list(batches(1)), list(batches(0))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(first, again, strict=True))  # the epoch decides the batches
    assert not torch.equal(first[0][1], other[0][1])
    calls = []
    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, **k: calls.append(k) or real_fit(*a, **k))
    monkeypatch.chdir(tmp_path)
    cfg = ClassifierConfig(epochs=2, batch_size=16, width=4, lr=1e-3)
    _, history = train_classifier(images, labels, cfg, RUNTIME, seed=1)
    assert [call["checkpoint_path"] for call in calls] == [None]
    assert list(tmp_path.iterdir()) == []  # no checkpoint written anywhere
    # 33 images in batches of 16: two steps, the lone 33rd left out (batch norm needs two).
    assert [row["steps"] for row in history] == [2, 2]
    # Cosine decay, read at each epoch's middle: 0.5 (1 + cos(pi (e + 0.5) / epochs)).
    assert [row["lr"] for row in history] == pytest.approx(
        [1e-3 * 0.5 * (1 + math.cos(math.pi * f)) for f in (0.25, 0.75)])
    assert {"loss", "train_accuracy", "seconds"} <= set(history[-1])


def test_max_images_trains_on_a_seeded_subset(digits_prepared) -> None:
    prepared, _, _ = digits_prepared
    cfg = ClassifierConfig(epochs=1, batch_size=16, width=4, max_images=32)
    _, meta = fit_domain(prepared, "B", cfg, RUNTIME, seed=0)
    assert meta["n_train"] == 32 and meta["n_train_available"] == 240


def test_perfect_translator_scores_the_ceiling(digits_prepared) -> None:
    prepared, classifiers, meta = digits_prepared
    names = sorted(p.name for p in (prepared / "testA").glob("*.png"))
    fake = folder_tensor(prepared / "testB")
    scores = semantic_scores("A_to_B", names, fake, prepared=prepared,
                             classifier_dir=classifiers, dataset="digits", runtime=RUNTIME)
    assert scores["label_accuracy"] == pytest.approx(meta["test_accuracy"])
    assert scores["label_accuracy_ceiling"] == pytest.approx(meta["test_accuracy"])
    assert scores["label_n"] == 60 and scores["label_chance"] == meta["chance"]
    # Doing nothing: test A is black here, read as one digit, right for that digit's share.
    assert scores["label_accuracy_identity"] <= meta["chance"]
    assert not any(key.startswith("paired_") for key in scores)  # digits are unpaired


def test_label_shuffling_translator_scores_about_chance(digits_prepared) -> None:
    prepared, classifiers, meta = digits_prepared
    names = sorted(p.name for p in (prepared / "testA").glob("*.png"))
    fake = folder_tensor(prepared / "testB")
    labels = semantic.read_labels(prepared)
    truth = np.array([labels[f"testA/{name}"] for name in names])
    # Each image replaced by one showing another digit, drawn at random among those.
    rng = np.random.default_rng(1)
    other = [int(rng.choice(np.flatnonzero(truth != digit))) for digit in truth]
    scores = semantic_scores("A_to_B", names, fake[other], prepared=prepared,
                             classifier_dir=classifiers, dataset="digits", runtime=RUNTIME)
    assert scores["label_accuracy"] <= 1.0 - meta["test_accuracy"] + 0.05
    # A random permutation keeps the label histogram: expected accuracy about sum(p_d^2).
    permuted = rng.permutation(len(names))
    scores = semantic_scores("A_to_B", names, fake[permuted], prepared=prepared,
                             classifier_dir=classifiers, dataset="digits", runtime=RUNTIME)
    chance = float(((np.bincount(truth) / len(truth)) ** 2).sum())
    assert abs(scores["label_accuracy"] - chance) < 0.15, (scores, chance)


def test_no_labels_no_classifier_no_scores(tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    save_png(prepared / "trainA" / "x.png", np.zeros((8, 8, 3), np.uint8))
    save_png(prepared / "testA" / "x.png", np.zeros((8, 8, 3), np.uint8))
    model, meta = fit_domain(prepared, "A", FAST, RUNTIME, seed=0)
    assert model is None and meta["labels"] is False and "no labels.csv" in meta["reason"]
    save_classifier(model, meta, tmp_path)
    assert not (tmp_path / "model.pt").exists()
    assert json.loads((tmp_path / "meta.json").read_text())["labels"] is False
    fake = torch.zeros((1, 3, 8, 8), dtype=torch.uint8)
    assert semantic_scores("B_to_A", ["x.png"], fake, prepared=prepared,
                           classifier_dir=tmp_path / "missing", dataset="apple2orange",
                           runtime=RUNTIME) == {}


# ---------------------------------------------------------------------------- labels in data

def test_prepare_carries_the_labels_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    generate_digits(raw, seed=0, image_size=16, train_per_domain=3, test_per_domain=2)
    (raw / "trainA" / "00001.png").write_bytes(b"not an image")  # skipped by prepare
    summary = prepare_dataset(raw, tmp_path / "prepared",
                              DataConfig(image_size=16, workers=1, val_fraction=0.0),
                              progress=False)
    with open(raw / LABELS_FILE, newline="", encoding="utf-8") as handle:
        raw_rows = {row["file"]: int(row["digit"]) for row in csv.DictReader(handle)}
    carried = semantic.read_labels(tmp_path / "prepared")
    assert summary["labels"] == len(carried) == 9
    assert carried == {file: digit for file, digit in raw_rows.items()
                       if file != "trainA/00001.png"}
    names, labels = semantic.folder_labels(tmp_path / "prepared", "testB")
    assert names == ["00000.png", "00001.png"] and labels == [raw_rows[f"testB/{n}"] for n in names]


def idx_gz(magic: int, array: np.ndarray) -> bytes:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return gzip.compress(header + array.tobytes())


def svhn_mat(images: np.ndarray, labels: np.ndarray) -> bytes:
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, {"X": np.moveaxis(images, 0, 3), "y": labels.reshape(-1, 1)})
    return buffer.getvalue()


def test_mnist_builders_write_labels_from_the_official_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    mnist = {"train": rng.integers(0, 10, 8).astype(np.uint8),
             "t10k": rng.integers(0, 10, 4).astype(np.uint8)}
    svhn = {"train": np.array([10, 1, 2]), "test": np.array([3, 10])}
    for split, labels in mnist.items():
        images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        (mirror / f"{split}-images-idx3-ubyte.gz").write_bytes(idx_gz(0x803, images))
        (mirror / f"{split}-labels-idx1-ubyte.gz").write_bytes(idx_gz(0x801, labels))
    for split, labels in svhn.items():
        images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
        (mirror / f"{split}_32x32.mat").write_bytes(svhn_mat(images, labels))
    assert read_idx_labels(mirror / "t10k-labels-idx1-ubyte.gz").tolist() == mnist["t10k"].tolist()
    assert read_svhn_labels(mirror / "train_32x32.mat").tolist() == [0, 1, 2]  # 10 means 0

    def labels_of(out: Path) -> dict[str, int]:
        with open(out / LABELS_FILE, newline="", encoding="utf-8") as handle:
            return {row["file"]: int(row["label"]) for row in csv.DictReader(handle)}

    out = tmp_path / "svhn"
    download_dataset(DataConfig(dataset="mnist2svhn"), out, seed=0, cache_dir=tmp_path / "cache",
                     mirror=str(mirror))
    got = labels_of(out)
    assert len(got) == 8 + 4 + 3 + 2
    assert got["testA/00003.png"] == mnist["t10k"][3] and got["trainB/00000.png"] == 0
    assert got["testB/00000.png"] == 3

    out = tmp_path / "colored"
    download_dataset(DataConfig(dataset="mnist2colored_mnist"), out, seed=0,
                     cache_dir=tmp_path / "cache", mirror=str(mirror))
    got = labels_of(out)
    assert len(got) == 8 + 4
    for file, label in got.items():
        split = "train" if file.startswith("train") else "t10k"
        assert label == mnist[split][int(Path(file).stem)]

    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (mirror / name).unlink()  # images without labels: still a dataset, B keeps its labels
    out = tmp_path / "no_mnist_labels"
    record = download_dataset(DataConfig(dataset="mnist2svhn"), out, seed=0,
                              cache_dir=tmp_path / "cache2", mirror=str(mirror))
    assert "labels unavailable" in json.dumps(record)
    assert set(labels_of(out)) == {f"{f}B/{i:05d}.png" for f, n in (("train", 3), ("test", 2))
                                   for i in range(n)}


# ---------------------------------------------------------------------------- paired scores

def test_pair_keys_of_the_aligned_layouts() -> None:
    maps, cityscapes = CATALOGUE["maps"].pair_suffixes, CATALOGUE["cityscapes"].pair_suffixes
    assert pair_key("12_A.png", maps) == pair_key("12_B.png", maps) == "12"
    assert pair_key("x_leftImg8bit.png", cityscapes) == pair_key("x_gtFine_color.png",
                                                                 cityscapes) == "x"
    assert pair_key("00001.png", maps) == "00001" and pair_key("_A.png", maps) == "_A"
    # Same stems: nothing is dropped.
    assert pair_key("12_A.png", CATALOGUE["mini_pix2pix"].pair_suffixes) == "12_A"
    paired = {name for name, entry in CATALOGUE.items() if entry.pair_suffixes is not None}
    assert paired == {"facades", "maps", "mini_pix2pix", "mini_colorization", "cityscapes"}


def aligned_prepared(root: Path, names_a: list[str], names_b: list[str]) -> list[np.ndarray]:
    """testA/testB with one flat colour per pair; returns the B images."""
    truths = []
    for index, (name_a, name_b) in enumerate(zip(names_a, names_b, strict=True)):
        save_png(root / "testA" / name_a, np.full((16, 16, 3), 20 * index, np.uint8))
        truth = np.random.default_rng(index).integers(0, 200, (16, 16, 3), dtype=np.uint8)
        save_png(root / "testB" / name_b, truth)
        truths.append(truth)
    return truths


def test_paired_scores_against_the_ground_truth_partner(tmp_path: Path) -> None:
    names_a, names_b = ["1_A.png", "2_A.png", "3_A.png"], ["1_B.png", "2_B.png", "3_B.png"]
    truths = aligned_prepared(tmp_path, names_a, names_b)
    fake = torch.from_numpy(np.stack(truths)).permute(0, 3, 1, 2).contiguous()
    common = {"prepared": tmp_path, "classifier_dir": tmp_path / "none", "runtime": RUNTIME}
    scores = semantic_scores("A_to_B", names_a, fake, dataset="maps", **common)
    assert scores == {"paired_l1": 0.0, "paired_psnr": 100.0, "paired_ssim": 1.0,
                      "paired_n": 3.0}
    # Reversed order: each translation now meets another image's partner.
    shuffled = semantic_scores("A_to_B", names_a[::-1], fake, dataset="maps", **common)
    assert shuffled["paired_l1"] > 0.1 and shuffled["paired_ssim"] < 0.5
    # A known error: +10 everywhere -> L1 10/255, PSNR 20 log10(255/10).
    scores = semantic_scores("A_to_B", names_a, fake + 10, dataset="facades", **common)
    assert scores["paired_l1"] == pytest.approx(10 / 255)
    assert scores["paired_psnr"] == pytest.approx(20 * np.log10(255 / 10))
    # An image without a partner is left out; an unpaired dataset gets no paired scores.
    (tmp_path / "testB" / "3_B.png").unlink()
    assert semantic_scores("A_to_B", names_a, fake, dataset="maps", **common)["paired_n"] == 2
    assert semantic_scores("A_to_B", names_a, fake, dataset="horse2zebra", **common) == {}


def test_a_partner_of_another_size_is_an_error_naming_both_files(tmp_path: Path) -> None:
    names_a, names_b = ["1_A.png", "2_A.png"], ["1_B.png", "2_B.png"]
    truths = aligned_prepared(tmp_path, names_a, names_b)
    fake = torch.from_numpy(np.stack(truths)).permute(0, 3, 1, 2).contiguous()
    save_png(tmp_path / "testB" / "2_B.png", np.zeros((24, 16, 3), np.uint8))
    with pytest.raises(DataError, match=(
            rf"{tmp_path}/testA/2_A.png translates to 16×16×3 but its ground-truth partner "
            rf"{tmp_path}/testB/2_B.png is 24×16×3; .*`dvc repro prepare`")):
        semantic_scores("A_to_B", names_a, fake, prepared=tmp_path,
                        classifier_dir=tmp_path / "none", dataset="maps", runtime=RUNTIME)


def test_same_stem_pairs_both_ways(tmp_path: Path) -> None:
    names = ["a.png", "b.png"]
    truths = aligned_prepared(tmp_path, names, names)
    fake = torch.from_numpy(np.stack(truths)).permute(0, 3, 1, 2).contiguous()
    scores = semantic_scores("A_to_B", names, fake, prepared=tmp_path,
                             classifier_dir=tmp_path, dataset="mini_pix2pix", runtime=RUNTIME)
    assert scores["paired_l1"] == 0.0 and scores["paired_n"] == 2
    real_a = folder_tensor(tmp_path / "testA")
    scores = semantic_scores("B_to_A", names, real_a, prepared=tmp_path,
                             classifier_dir=tmp_path, dataset="mini_colorization",
                             runtime=RUNTIME)
    assert scores["paired_ssim"] == pytest.approx(1.0) and "pixel_accuracy" not in scores


# ---------------------------------------------------------------------------- segmentation

COLOUR = dict(CATALOGUE["cityscapes"].palette.classes)


def label_map(rows: list[list[str]]) -> np.ndarray:
    """A colour label map from class names ('void' = black), each name a 2 x 2 block (SSIM,
    computed beside, needs 7 x 7 px)."""
    cells = np.array([[COLOUR.get(name, (0, 0, 0)) for name in row] for row in rows], np.uint8)
    return cells.repeat(2, axis=0).repeat(2, axis=1)


def test_segmentation_scores_on_a_hand_built_label_map(tmp_path: Path) -> None:
    truth = label_map([["road", "road", "car", "sky"],
                       ["road", "road", "car", "sky"],
                       ["road", "road", "void", "sky"],
                       ["road", "road", "void", "sky"]])
    save_png(tmp_path / "testA" / "x_leftImg8bit.png", np.zeros((8, 8, 3), np.uint8))
    save_png(tmp_path / "testB" / "x_gtFine_color.png", truth)

    def scores(fake_hwc: np.ndarray) -> dict[str, float]:
        fake = torch.from_numpy(fake_hwc).permute(2, 0, 1)[None].contiguous()
        return semantic_scores("A_to_B", ["x_leftImg8bit.png"], fake, prepared=tmp_path,
                               classifier_dir=tmp_path, dataset="cityscapes", runtime=RUNTIME)

    noisy = np.clip(truth.astype(int) + np.random.default_rng(0).integers(-8, 9, truth.shape),
                    0, 255).astype(np.uint8)  # nearest palette colour still the right class
    perfect = scores(noisy)
    assert (perfect["pixel_accuracy"], perfect["class_accuracy"], perfect["class_iou"]) == (
        1.0, 1.0, 1.0)
    assert "paired_ssim" in perfect
    # One car pixel painted road, one void pixel painted sky (ignored: void in the truth).
    fake = truth.copy()
    fake[0:2, 4:6] = COLOUR["road"]
    fake[6:8, 4:6] = COLOUR["sky"]
    got = scores(fake)
    # 14 labelled pixels, 13 right. Road 8/8, car 1/2, sky 4/4.
    assert got["pixel_accuracy"] == pytest.approx(13 / 14)
    assert got["class_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    # IoU: road 8 / (8 + 9 - 8), car 1 / 2, sky 4 / 4.
    assert got["class_iou"] == pytest.approx((8 / 9 + 0.5 + 1) / 3)
    # A class predicted but absent from the truth counts with IoU 0 (not in class accuracy).
    fake = truth.copy()
    fake[0:2, 0:2] = COLOUR["bus"]
    got = scores(fake)
    assert got["class_accuracy"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    assert got["class_iou"] == pytest.approx((7 / 8 + 1 + 1 + 0) / 4)
    # The other direction (label -> photo) has no segmentation scores.
    fake = torch.from_numpy(np.zeros((8, 8, 3), np.uint8)).permute(2, 0, 1)[None].contiguous()
    back = semantic_scores("B_to_A", ["x_gtFine_color.png"], fake, prepared=tmp_path,
                           classifier_dir=tmp_path, dataset="cityscapes", runtime=RUNTIME)
    assert "pixel_accuracy" not in back and back["paired_l1"] == 0.0
