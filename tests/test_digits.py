"""Tests for the embedded ``digits`` dataset (cyclelab.data.digits)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclelab.data import digits
from cyclelab.data.digits import (
    FOLDERS,
    DigitStyle,
    generate_digits,
    pick_colour,
    render_masks,
    supersample,
)

SIZE = 32


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _stack(folder: Path) -> np.ndarray:
    """All PNGs of ``folder`` as one float array (n, h, w, 3)."""
    return np.stack(
        [np.asarray(Image.open(path), dtype=np.float64) for path in sorted(folder.glob("*.png"))]
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """100 train and 20 test images per domain at 32 px, seed 0."""
    root = tmp_path_factory.mktemp("digits") / "raw"
    summary = generate_digits(
        root, seed=0, image_size=SIZE, train_per_domain=100, test_per_domain=20
    )
    return root, summary


def test_counts_sizes_and_mode(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    expected = {"trainA": 100, "trainB": 100, "testA": 20, "testB": 20}
    assert summary["dataset"] == "digits"
    assert summary["counts"] == expected
    for folder, count in expected.items():
        files = sorted((root / folder).glob("*.png"))
        assert [f.name for f in files] == [f"{i:05d}.png" for i in range(count)]
        for path in files:
            with Image.open(path) as img:
                assert img.mode == "RGB"
                assert img.size == (SIZE, SIZE)
    assert sorted(p.name for p in root.iterdir()) == sorted([*FOLDERS, "labels.csv"])


def test_labels_csv_matches_files_and_summary(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["split", "domain", "file", "digit"]
    assert len(rows) == 240
    for row in rows:
        assert (root / row["file"]).is_file()
        assert row["file"].startswith(row["split"] + row["domain"] + "/")
    for folder in FOLDERS:
        histogram = [0] * 10
        for row in rows:
            if row["split"] + row["domain"] == folder:
                histogram[int(row["digit"])] += 1
        assert summary["digit_counts"][folder] == histogram
        assert sum(histogram) == summary["counts"][folder]


def test_every_digit_appears_and_domains_are_unpaired(dataset: tuple[Path, dict]) -> None:
    _, summary = dataset
    for folder in ("trainA", "trainB"):
        assert all(n > 0 for n in summary["digit_counts"][folder]), folder
    with open(dataset[0] / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "train"]
    digits_a = np.array([int(r["digit"]) for r in rows if r["domain"] == "A"])
    digits_b = np.array([int(r["digit"]) for r in rows if r["domain"] == "B"])
    # Independent draws agree about one time in ten; paired data would agree always.
    assert np.mean(digits_a == digits_b) < 0.3


def test_domain_a_is_white_digit_on_black(dataset: tuple[Path, dict]) -> None:
    img_a = _stack(dataset[0] / "trainA")
    assert np.array_equal(img_a[..., 0], img_a[..., 1])
    assert np.array_equal(img_a[..., 1], img_a[..., 2])
    grey = img_a[..., 0]
    # Every image: a bright digit covering a minority of a dark frame, like MNIST.
    assert grey.max(axis=(1, 2)).min() >= 250
    bright = (grey > 128).mean(axis=(1, 2))
    assert bright.min() > 0.04
    assert bright.max() < 0.45
    assert 20 < grey.mean() < 80
    # The digit stays inside the frame: the one-pixel border is (almost) black.
    border = np.concatenate([grey[:, 0], grey[:, -1], grey[:, :, 0], grey[:, :, -1]], axis=1)
    assert border.max() < 32
    assert border.mean() < 1.0


def test_domain_b_is_a_coloured_outlined_digit_on_a_smooth_pale_gradient(
        dataset: tuple[Path, dict]) -> None:
    img_b = _stack(dataset[0] / "trainB").astype(np.float64)
    # The border (no ink there): pale, changing smoothly (a gradient, not a flat fill, not a
    # texture): neighbouring border pixels differ by a few levels at most.
    border = np.concatenate([img_b[:, 0], img_b[:, -1]], axis=1)  # N x 64 x 3
    assert border.mean(axis=(1, 2)).min() > 170
    assert np.abs(np.diff(border[:, :32], axis=1)).max(axis=(1, 2)).max() < 16
    spread = border.max(axis=1) - border.min(axis=1)
    assert np.median(spread.max(axis=1)) > 10  # two colours, not one
    # The digit: a saturated colour (chroma far above the pale background's) and a dark ring.
    chroma = img_b.max(axis=3) - img_b.min(axis=3)
    assert (chroma > 120).mean(axis=(1, 2)).min() > 0.01
    luma = img_b @ np.array([0.299, 0.587, 0.114])
    assert luma.min(axis=(1, 2)).max() < 100 and (luma < 100).mean(axis=(1, 2)).min() > 0.01
    # Domain B does not look like domain A: not grey, not mostly black.
    assert img_b.mean() > 120


def _hues(images: np.ndarray, saturated: bool) -> np.ndarray:
    """HSV hue (0-1) of each image's saturated (fill) or pale (background border) pixels,
    the circular mean per image."""
    rgb = images / 255.0
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    chroma = high - low
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.select([high == r, high == g], [((g - b) / safe) % 6, (b - r) / safe + 2],
                    (r - g) / safe + 4) / 6.0
    if saturated:
        mask = chroma > 0.5
    else:
        mask = np.zeros_like(chroma, dtype=bool)
        mask[:, :2], mask[:, -2:] = True, True  # the top and bottom rows: background only
    angle = 2 * np.pi * hue
    mean = [np.angle(np.exp(1j * angle[i][mask[i]]).mean()) for i in range(len(images))]
    return (np.array(mean) / (2 * np.pi)) % 1.0


def test_fixed_palette_is_one_target_style_varied_is_any_colour(tmp_path: Path) -> None:
    """palette fixed (the default): every B digit orange on pale blue; varied: fills and
    backgrounds over the whole hue circle. A is the same either way, and so are the digits."""
    kwargs = {"seed": 0, "image_size": SIZE, "train_per_domain": 40, "test_per_domain": 1}
    fixed = generate_digits(tmp_path / "fixed", **kwargs)
    varied = generate_digits(tmp_path / "varied", palette="varied", **kwargs)
    assert fixed["palette"] == "fixed" and varied["palette"] == "varied"
    assert fixed["digit_counts"] == varied["digit_counts"]
    assert _hashes(tmp_path / "fixed" / "trainA") == _hashes(tmp_path / "varied" / "trainA")
    b_fixed, b_varied = (_stack(tmp_path / name / "trainB") for name in ("fixed", "varied"))
    fill, back = _hues(b_fixed, saturated=True), _hues(b_fixed, saturated=False)
    assert ((fill > 0.03) & (fill < 0.13)).all(), fill  # orange (the range is 0.05-0.11)
    assert ((back > 0.5) & (back < 0.67)).all(), back  # pale blue (0.53-0.63)
    # varied: fills of every sixth of the hue circle.
    assert len(set((_hues(b_varied, saturated=True) * 6).astype(int))) == 6


def test_unknown_palette_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="palette"):
        generate_digits(tmp_path / "out", seed=0, image_size=SIZE, train_per_domain=1,
                        test_per_domain=1, palette="rainbow")
    assert not (tmp_path / "out").exists()


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    kwargs = dict(seed=7, image_size=SIZE, train_per_domain=6, test_per_domain=3)
    first = generate_digits(tmp_path / "one", **kwargs)
    second = generate_digits(tmp_path / "two", **kwargs)
    assert first == second
    hashes = _hashes(tmp_path / "one")
    assert len(hashes) == 2 * 6 + 2 * 3 + 1  # PNGs plus labels.csv
    assert hashes == _hashes(tmp_path / "two")


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    kwargs = dict(image_size=SIZE, train_per_domain=6, test_per_domain=3)
    generate_digits(tmp_path / "s7", seed=7, **kwargs)
    generate_digits(tmp_path / "s8", seed=8, **kwargs)
    seven, eight = _hashes(tmp_path / "s7"), _hashes(tmp_path / "s8")
    pngs = [name for name in seven if name.endswith(".png")]
    assert len(pngs) == 18
    assert all(seven[name] != eight[name] for name in pngs)


def test_streams_are_independent_of_counts_and_of_each_other(tmp_path: Path) -> None:
    small = tmp_path / "small"
    large = tmp_path / "large"
    generate_digits(small, seed=3, image_size=SIZE, train_per_domain=2, test_per_domain=2)
    generate_digits(large, seed=3, image_size=SIZE, train_per_domain=5, test_per_domain=2)
    small_hashes, large_hashes = _hashes(small), _hashes(large)
    # More train images change neither the first train images nor any test image.
    for name, digest in small_hashes.items():
        if name.endswith(".png"):
            assert large_hashes[name] == digest, name
    # Train and test, A and B, draw from different streams.
    firsts = {small_hashes[f"{folder}/00000.png"] for folder in FOLDERS}
    assert len(firsts) == 4


@pytest.mark.parametrize(
    ("image_size", "train", "test", "seed"),
    [(7, 1, 1, 0), (32, 0, 1, 0), (32, 1, 0, 0), (32, 1, 1, -1)],
)
def test_bad_arguments_raise_before_writing(
    tmp_path: Path, image_size: int, train: int, test: int, seed: int
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError):
        generate_digits(
            out, seed=seed, image_size=image_size, train_per_domain=train, test_per_domain=test
        )
    assert not out.exists()


def test_smallest_size_works(tmp_path: Path) -> None:
    summary = generate_digits(
        tmp_path / "o", seed=0, image_size=8, train_per_domain=2, test_per_domain=1
    )
    assert summary["counts"]["testB"] == 1
    with Image.open(tmp_path / "o" / "trainB" / "00001.png") as img:
        assert img.size == (8, 8)


def test_failure_leaves_no_partial_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real_render = digits.render_digit

    def flaky(rng: np.random.Generator, domain: str, image_size: int, palette: str):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real_render(rng, domain, image_size, palette)

    monkeypatch.setattr(digits, "render_digit", flaky)
    existing = tmp_path / "out"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(OSError, match="disk full"):
        generate_digits(existing, seed=0, image_size=SIZE, train_per_domain=3, test_per_domain=1)
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    fresh = tmp_path / "fresh"
    calls["n"] = 0
    with pytest.raises(OSError):
        generate_digits(fresh, seed=0, image_size=SIZE, train_per_domain=3, test_per_domain=1)
    assert not fresh.exists()


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "trainA").mkdir()
    with pytest.raises(FileExistsError, match="trainA"):
        generate_digits(tmp_path, seed=0, image_size=SIZE, train_per_domain=1, test_per_domain=1)
    assert (tmp_path / "trainA").is_dir()
    assert not (tmp_path / "trainB").exists()


def test_supersample_factor() -> None:
    assert [supersample(s) for s in (8, 32, 64, 128, 256, 1024)] == [4, 4, 4, 2, 2, 2]


def _ink_box(mask: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of pixels more than half covered."""
    rows, cols = np.nonzero(np.asarray(mask) > 127)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def test_render_masks_scales_and_places_the_ink() -> None:
    canvas = 128
    centred = DigitStyle(
        digit=8,
        font_file="DejaVuSans-Bold.ttf",
        stroke=0.02,
        rotation_deg=0.0,
        shear=0.0,
        aspect=1.0,
        height=0.7,
        pos_x=0.5,
        pos_y=0.5,
    )
    (body,) = render_masks(centred, canvas)
    assert body.mode == "L" and body.size == (canvas, canvas)
    left, top, right, bottom = _ink_box(body)
    assert abs((bottom - top) - 0.7 * canvas) <= 2
    assert abs(top - (canvas - (bottom - top)) / 2) <= 2
    assert abs(left - (canvas - right)) <= 2
    # pos 0, 0 puts the ink in the top-left corner; rotation keeps it inside the frame.
    corner = DigitStyle(**{**centred.__dict__, "pos_x": 0.0, "pos_y": 0.0, "rotation_deg": 15.0})
    left, top, _, _ = _ink_box(render_masks(corner, canvas)[0])
    assert left <= 2 and top <= 2
    edge = np.asarray(render_masks(corner, canvas)[0])
    assert edge[-1].max() == 0 and edge[:, -1].max() == 0


def test_render_masks_outline_surrounds_the_body() -> None:
    style = DigitStyle(
        digit=3,
        font_file="DejaVuSans.ttf",
        stroke=0.03,
        rotation_deg=-10.0,
        shear=0.2,
        aspect=0.9,
        height=0.6,
        pos_x=0.3,
        pos_y=0.7,
    )
    body, ring = (np.asarray(m, dtype=np.int16) for m in render_masks(style, 128, outline=0.04))
    assert (ring >= body - 8).all()
    assert (ring > 127).sum() > 1.3 * (body > 127).sum()


def test_pick_colour_first_far_candidate_else_farthest() -> None:
    candidates = np.array([[250.0, 10, 10], [10, 10, 250], [10, 250, 10]])
    # Orange-ish background: red is too close (distance < 160), blue is the first far one.
    assert pick_colour(candidates, np.array([220.0, 90, 40])).tolist() == [10, 10, 250]
    # Grey background: nothing is 160 away, so the farthest wins.
    close = np.array([[140.0, 120, 120], [120, 150, 120], [110, 110, 110]])
    assert pick_colour(close, np.array([120.0, 120, 120])).tolist() == [120, 150, 120]
