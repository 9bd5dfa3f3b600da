"""Tests for the prepare stage (cyclelab.data.prepare and cyclelab.data.images).

Raw folders are built here from a few pixels: broken and odd files, each resize policy's
geometry, duplicates, empty splits. One slow test prepares the real apple2orange archive when
/work/shared/datasets holds it.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclelab import config
from cyclelab.config import DataConfig
from cyclelab.data import images, prepare
from cyclelab.errors import DataError
from cyclelab.paths import MANIFEST_FILE, SUMMARY_FILE

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
APPLE2ORANGE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "apple2orange.zip"


# ---------------------------------------------------------------- building odd files

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, rows: bytes, *, depth: int = 8,
              color_type: int = 2) -> bytes:
    """A PNG written by hand: any IHDR (16-bit RGB, absurd sizes) with ``rows`` as its data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows))
            + _chunk(b"IEND", b""))


def rgb16_png(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG of ``pixels`` (H x W x 3 uint16; Pillow cannot write this mode)."""
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return png_bytes(pixels.shape[1], pixels.shape[0], rows, depth=16, color_type=2)


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def halves(width: int, height: int, left: tuple, right: tuple) -> Image.Image:
    """An RGB image whose left half is ``left`` and right half ``right``."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = left
    pixels[:, width // 2:] = right
    return Image.fromarray(pixels)


def noise(seed: int, size: int = 24) -> Image.Image:
    """A distinct RGB image per seed (so no two test images are duplicates by accident)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def write_raw(root: Path, files: dict[str, bytes]) -> Path:
    """Create ``root/<relative path>`` for each entry; every split folder exists."""
    for split in prepare.SPLITS:
        (root / split).mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def one_good_per_split(start: int = 100) -> dict[str, bytes]:
    return {f"{split}/good{i}.png": encode(noise(start + i), "PNG")
            for i, split in enumerate(prepare.SPLITS)}


def read_manifest(out: Path) -> dict[str, dict[str, str]]:
    """Manifest rows keyed by source path (relative to the raw folder, as the manifest says)."""
    with open(out / MANIFEST_FILE, newline="", encoding="utf-8") as handle:
        return {row["source"]: row for row in csv.DictReader(handle)}


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img).astype(int)


def cfg(**overrides) -> DataConfig:
    # No validation split unless a test asks for one: most raw folders here hold one image per
    # split (tests/test_validation_split.py tests the split).
    base = {"image_size": 16, "min_image_size": 4, "workers": 1, "val_fraction": 0.0}
    return DataConfig(**{**base, **overrides})


# ---------------------------------------------------------------- odd and broken inputs

@pytest.fixture
def odd_raw(tmp_path) -> Path:
    """trainA holds one file of every odd kind; the other splits one good image each."""
    good_jpeg = encode(noise(1, 64), "JPEG", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: display rotated 90 degrees clockwise
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([*RED, *GREEN, *BLUE] + [0] * (256 * 3 - 9))
    palette.paste(2, (0, 0, 10, 20))  # left half blue, right half green
    palette_transparent = palette.copy()
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, 10:] = (*RED, 255)  # left half fully transparent (black under it), right half red
    gray16 = np.full((20, 20), 40000, np.uint16)
    files = {
        "trainA/good.jpg": good_jpeg,
        "trainA/nested/deeper/good.png": encode(noise(2), "PNG"),
        "trainA/truncated.jpg": good_jpeg[: len(good_jpeg) // 2],
        "trainA/zero.jpg": b"",
        "trainA/text.jpg": b"this is a text file with an image extension\n",
        "trainA/README.txt": b"apple2orange, see the paper\n",
        "trainA/.DS_Store": b"\x00\x00\x00\x01Bud1" + bytes(64),
        "trainA/Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64),
        "trainA/cmyk.jpg": encode(Image.new("CMYK", (20, 20), (0, 255, 255, 0)), "JPEG",
                                  quality=95),
        "trainA/gray16.png": encode(Image.fromarray(gray16), "PNG"),
        "trainA/rgb16.png": rgb16_png(np.tile(np.array([65535, 32896, 2570], np.uint16),
                                              (20, 20, 1))),
        "trainA/palette.png": encode(palette, "PNG"),
        "trainA/palette_transparent.png": encode(palette_transparent, "PNG", transparency=2),
        "trainA/rgba.png": encode(Image.fromarray(rgba), "PNG"),
        "trainA/one_pixel.png": encode(Image.new("RGB", (1, 1), RED), "PNG"),
        # 10^10 pixels claimed by a 70-byte file: decoding it would need 30 GB.
        "trainA/huge.png": png_bytes(100_000, 100_000, bytes(64), color_type=0),
        "trainA/exif_rotated.jpg": encode(halves(40, 20, RED, BLUE), "JPEG", quality=95,
                                          exif=exif.tobytes()),
        **one_good_per_split(),
    }
    return write_raw(tmp_path / "raw", files)


def test_odd_files_get_a_reason_and_usable_ones_become_rgb(odd_raw, tmp_path):
    out = tmp_path / "prepared"
    # The huge PNG is refused from its header (decoding it would need 30 GB); the time this
    # takes is measured in bench/bench_limits.py.
    summary = prepare.prepare_dataset(odd_raw, out, cfg(), progress=False)
    rows = read_manifest(out)
    expected = {
        "truncated.jpg": ("skipped", "truncated or corrupt"),
        "zero.jpg": ("skipped", "empty file"),
        "text.jpg": ("skipped", "not an image"),
        "README.txt": ("skipped", "not an image"),
        ".DS_Store": ("skipped", "not an image"),
        "Thumbs.db": ("skipped", "not an image"),
        "one_pixel.png": ("skipped", "too small"),
        "huge.png": ("skipped", "too large"),
    }
    for name, (status, reason) in expected.items():
        row = rows[f"trainA/{name}"]
        assert (row["status"], row["reason"], row["output"]) == (status, reason, ""), name
    assert rows["trainA/huge.png"]["width"] == "100000"
    assert rows["trainA/one_pixel.png"]["width"] == "1"
    usable = ["good.jpg", "nested/deeper/good.png", "cmyk.jpg", "gray16.png", "rgb16.png",
              "palette.png", "palette_transparent.png", "rgba.png", "exif_rotated.jpg",
              "good0.png"]
    for name in usable:
        row = rows[f"trainA/{name}"]
        assert (row["status"], row["reason"]) == ("ok", ""), name
        assert pixels(out / row["output"]).shape == (16, 16, 3)
    assert len(rows) == len(expected) + len(usable) + 3
    assert rows["trainA/cmyk.jpg"]["mode"] == "CMYK"
    assert rows["trainA/gray16.png"]["mode"] == "I;16"
    assert rows["trainA/rgba.png"]["mode"] == "RGBA"
    # good.jpg and nested/deeper/good.png share a stem: both get a hash of their path.
    collided = {rows[f"trainA/{n}"]["output"] for n in ("good.jpg", "nested/deeper/good.png")}
    assert len(collided) == 2 and all(o.startswith("trainA/good-") for o in collided)
    assert rows["trainA/rgba.png"]["output"] == "trainA/rgba.png"
    assert (rows["testB/good3.png"]["split"], rows["testB/good3.png"]["domain"]) == ("test", "B")
    assert summary["outputs"] == {"trainA": 10, "trainB": 1, "valA": 0, "valB": 0, "testA": 1,
                                  "testB": 1}
    assert summary["inputs"]["trainA"] == 18
    assert summary["skipped"] == {"empty file": 1, "not an image": 4, "too large": 1,
                                  "too small": 1, "truncated or corrupt": 1}
    assert sorted(p.name for p in (out / "trainA").iterdir()) == sorted(
        Path(rows[f"trainA/{n}"]["output"]).name for n in usable)

    def out_pixels(name: str) -> np.ndarray:
        return pixels(out / rows[f"trainA/{name}"]["output"])

    assert np.abs(out_pixels("cmyk.jpg") - RED).max() <= 8
    # 16-bit values are scaled to 8 bit (40000 / 257 = 155.6), not clipped at 255.
    assert np.abs(out_pixels("gray16.png") - 156).max() <= 1
    assert np.abs(out_pixels("rgb16.png") - (255, 128, 10)).max() <= 1
    # Transparent pixels are composited on white, opaque ones keep their colour.
    rgba_out = out_pixels("rgba.png")
    assert np.abs(rgba_out[:, :6] - WHITE).max() <= 1
    assert np.abs(rgba_out[:, 10:] - RED).max() <= 1
    pal = out_pixels("palette.png")
    assert np.abs(pal[:, :6] - BLUE).max() <= 1 and np.abs(pal[:, 10:] - GREEN).max() <= 1
    pal_t = out_pixels("palette_transparent.png")
    assert np.abs(pal_t[:, :6] - WHITE).max() <= 1 and np.abs(pal_t[:, 10:] - GREEN).max() <= 1
    # EXIF orientation 6: the stored left half (red) is displayed on top.
    rotated = out_pixels("exif_rotated.jpg")
    assert np.abs(rotated[:5, 4:12] - RED).max() <= 12
    assert np.abs(rotated[11:, 4:12] - BLUE).max() <= 12


def test_decode_rejects_before_decoding_pixels():
    pillow_limit = Image.MAX_IMAGE_PIXELS
    claimed = png_bytes(100_000, 100_000, bytes(64), color_type=0)
    with pytest.raises(images.Rejected) as caught:
        images.decode(claimed, max_pixels=10**8, min_side=8)
    assert caught.value.reason == images.TOO_LARGE
    assert caught.value.header.width == 100_000
    small = encode(noise(3, 32), "PNG")
    with pytest.raises(images.Rejected) as caught:
        images.decode(small, max_pixels=1023, min_side=8)
    assert caught.value.reason == images.TOO_LARGE
    with pytest.raises(images.Rejected) as caught:
        images.decode(small, max_pixels=1024, min_side=33)
    assert caught.value.reason == images.TOO_SMALL
    header, img = images.decode(small, max_pixels=1024, min_side=32)
    assert (header.width, header.height, img.size) == (32, 32, (32, 32))
    assert Image.MAX_IMAGE_PIXELS == pillow_limit  # Pillow's global limit is restored


def test_to_rgb_modes():
    la = Image.fromarray(np.array([[[50, 0], [50, 255]]], np.uint8), mode="LA")
    assert np.asarray(images.to_rgb(la)).tolist() == [[[255, 255, 255], [50, 50, 50]]]
    bilevel = Image.new("1", (2, 1), 1)
    assert np.asarray(images.to_rgb(bilevel)).tolist() == [[[255] * 3, [255] * 3]]
    gray16 = Image.fromarray(np.array([[0, 257, 65535, 32896]], np.uint16))
    assert np.asarray(images.to_rgb(gray16))[0, :, 0].tolist() == [0, 1, 255, 128]
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert np.asarray(images.to_rgb(floats))[0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(images.Rejected) as caught:  # premultiplied LA: Pillow cannot convert it
        images.to_rgb(Image.new("La", (2, 2)))
    assert caught.value.reason == images.UNSUPPORTED


# ---------------------------------------------------------------- resize policies

def test_registry_matches_config_choices():
    choices = {p.key: p.choices for p in config.params()}["data.resize"]
    assert set(images.RESIZE_POLICIES) == set(choices)


def test_resize_squashes_to_the_requested_size():
    out = np.asarray(images.resize(halves(40, 20, RED, BLUE), 16, "resize")).astype(int)
    assert out.shape == (16, 16, 3)
    assert np.abs(out[:, :6] - RED).max() <= 1 and np.abs(out[:, 10:] - BLUE).max() <= 1


def test_center_crop_keeps_the_centre():
    pixels_in = np.zeros((20, 60, 3), np.uint8)
    pixels_in[:, 20:40] = GREEN  # the central 20 x 20 square
    out = np.asarray(images.resize(Image.fromarray(pixels_in), 16, "center_crop")).astype(int)
    assert out.shape == (16, 16, 3)
    assert np.abs(out - GREEN).max() <= 1
    portrait = np.zeros((60, 20, 3), np.uint8)
    portrait[20:40] = RED
    out = np.asarray(images.resize(Image.fromarray(portrait), 8, "center_crop")).astype(int)
    assert np.abs(out - RED).max() <= 1


def test_pad_letterboxes_with_the_pad_colour():
    out = np.asarray(images.resize(Image.new("RGB", (40, 20), RED), 16, "pad", BLUE)).astype(int)
    assert out.shape == (16, 16, 3)
    assert (out[:4] == BLUE).all() and (out[12:] == BLUE).all()  # bands above and below
    assert (out[4:12] == RED).all()
    tall = np.asarray(images.resize(Image.new("RGB", (10, 40), RED), 16, "pad", GREEN))
    assert (tall[:, :6] == GREEN).all() and (tall[:, 10:] == GREEN).all()
    assert (tall[:, 6:10] == RED).all()


def test_pad_only_centres_unscaled_on_the_pad_colour():
    # Seed 003: 28 px MNIST zero-padded to 32 px, every digit pixel as it was.
    digit = np.random.default_rng(3).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    for pad_color in ((0, 0, 0), (10, 200, 30)):
        out = np.asarray(images.resize(Image.fromarray(digit), 32, "pad_only", pad_color))
        assert out.shape == (32, 32, 3)
        assert np.array_equal(out[2:30, 2:30], digit)
        border = np.ones((32, 32), bool)
        border[2:30, 2:30] = False
        assert (out[border] == pad_color).all()
    # An odd margin: the extra pixel goes right and below.
    odd = np.asarray(images.resize(Image.new("RGB", (5, 4), RED), 8, "pad_only", BLUE))
    assert (odd[2:6, 1:6] == RED).all() and (odd[:2] == BLUE).all() and (odd[6:] == BLUE).all()
    assert (odd[:, 0] == BLUE).all() and (odd[:, 6:] == BLUE).all()
    same = np.asarray(images.resize(Image.fromarray(digit), 28, "pad_only"))
    assert np.array_equal(same, digit)


def test_pad_only_refuses_an_image_larger_than_the_size():
    with pytest.raises(DataError, match=r"40x20 is larger than data.image_size = 32.*pad_only"):
        images.resize(Image.new("RGB", (40, 20)), 32, "pad_only", (0, 0, 0))


def test_prepare_pads_with_pad_color_and_names_a_file_too_large(tmp_path):
    files = {f"{split}/digit.png": encode(noise(20 + i, 28), "PNG")
             for i, split in enumerate(prepare.SPLITS)}
    raw = write_raw(tmp_path / "raw", files)
    out = tmp_path / "out"
    prepare.prepare_dataset(raw, out, cfg(image_size=32, resize="pad_only",
                                          background_color=list(BLUE)), progress=False)
    padded = pixels(out / "trainA" / "digit.png")
    assert (padded[:2] == 0).all() and (padded[:, 30:] == 0).all()  # data.pad_color, not blue
    assert np.array_equal(padded[2:30, 2:30], np.asarray(noise(20, 28)))
    (raw / "testB" / "big.png").write_bytes(encode(noise(9, 40), "PNG"))
    with pytest.raises(DataError) as caught:
        prepare.prepare_dataset(raw, out, cfg(image_size=32, resize="pad_only"), progress=False)
    message = str(caught.value)
    assert "\n" not in message and str(raw / "testB" / "big.png") in message
    assert "data.resize: pad_only" in message


def test_downsampling_is_antialiased():
    checker = (np.indices((256, 256)).sum(axis=0) % 2 * 255).astype(np.uint8)
    img = Image.fromarray(np.stack([checker] * 3, axis=-1))
    for policy in set(images.RESIZE_POLICIES) - {"pad_only"}:  # pad_only never scales
        out = np.asarray(images.resize(img, 32, policy)).astype(float)
        # Point sampling would give pure black or white; a low-pass filter gives mid-grey.
        assert abs(out.mean() - 127.5) < 2 and out.std() < 3, policy


def test_prepare_applies_the_policy_and_background_colour(tmp_path):
    files = {f"{split}/wide.png": encode(Image.new("RGB", (40 + i, 20), RED), "PNG")
             for i, split in enumerate(prepare.SPLITS)}
    raw = write_raw(tmp_path / "raw", files)
    out = tmp_path / "out"
    prepare.prepare_dataset(raw, out, cfg(resize="pad", background_color=list(BLUE)),
                            progress=False)
    padded = pixels(out / "trainA" / "wide.png")
    assert (padded[:4] == BLUE).all() and (padded[12:] == BLUE).all()
    assert (padded[4:12] == RED).all()


# ---------------------------------------------------------------- names, duplicates, errors

def test_output_names_are_unique_and_stable():
    sources = ["a/x.jpg", "b/X.png", "y z.jpg", "c/y z.JPG.png", "..", "ok.jpeg"]
    names = prepare.output_names(sources)
    assert names == prepare.output_names(sources)
    assert len({n.lower() for n in names}) == len(sources)
    assert names[2] == "y_z.png" and names[5] == "ok.png" and names[4] == "image.png"
    assert names[0].startswith("x-") and names[1].startswith("X-")


def duplicate_raw(root: Path) -> Path:
    original = encode(noise(7), "PNG")
    reencoded = encode(Image.open(io.BytesIO(original)), "BMP")  # same pixels, other bytes
    return write_raw(root, {
        "trainA/a.png": original,
        "trainA/sub/a_copy.png": original,  # within the split
        "testA/leak.png": original,  # a training image in the test split
        "trainB/b.png": encode(noise(8), "PNG"),
        "testB/b_reencoded.bmp": encode(noise(8), "BMP"),  # across splits, other format
        "testB/c.bmp": reencoded,  # across domains and splits
        **one_good_per_split(),
    })


def test_duplicates_are_reported_and_the_test_copy_is_the_one_kept(tmp_path):
    raw = duplicate_raw(tmp_path / "raw")
    summary = prepare.prepare_dataset(raw, tmp_path / "out", cfg(drop_duplicates=False),
                                      progress=False)
    rows = read_manifest(tmp_path / "out")
    assert rows["testA/leak.png"]["status"] == "ok"  # the test copy is kept, whatever its order
    assert rows["testB/b_reencoded.bmp"]["status"] == "ok"
    expected = {
        "trainA/a.png": ("same file", "testA/leak.png"),
        "trainA/sub/a_copy.png": ("same file", "testA/leak.png"),
        "trainB/b.png": ("same pixels", "testB/b_reencoded.bmp"),
        "testB/c.bmp": ("same pixels", "testA/leak.png"),  # within the test split: the first
    }
    for key, (reason, first) in expected.items():
        row = rows[key]
        assert (row["status"], row["reason"], row["duplicate_of"]) == ("duplicate", reason, first)
        assert (tmp_path / "out" / row["output"]).is_file()
    assert summary["duplicates"] == {"found": 4, "same_file": 2, "same_pixels": 2,
                                     "across_splits": 4, "dropped_from_train": 0}
    assert summary["outputs"] == {"trainA": 3, "trainB": 2, "valA": 0, "valB": 0, "testA": 2,
                                  "testB": 3}


def test_training_copies_of_test_images_are_dropped_by_default(tmp_path):
    assert DataConfig().drop_duplicates
    raw = duplicate_raw(tmp_path / "raw")
    out = tmp_path / "out"
    summary = prepare.prepare_dataset(raw, out, cfg(), progress=False)
    assert summary["duplicates"]["dropped_from_train"] == 3
    # The test split is never changed, its repeat (c.bmp) included.
    assert summary["outputs"] == {"trainA": 1, "trainB": 1, "valA": 0, "valB": 0, "testA": 2,
                                  "testB": 3}
    assert sorted(p.name for p in (out / "testA").iterdir()) == ["good2.png", "leak.png"]
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["good0.png"]
    rows = read_manifest(out)
    for source in ("trainA/a.png", "trainA/sub/a_copy.png", "trainB/b.png"):
        assert (rows[source]["status"], rows[source]["output"]) == ("duplicate", ""), source
        assert rows[source]["detail"].startswith("dropped from training: the same image is in t")
    assert rows["testB/c.bmp"]["output"] == "testB/c.png"
    written = json.loads((out / SUMMARY_FILE).read_text())
    assert written["duplicates"]["dropped_from_train"] == 3
    assert written["outputs"] == summary["outputs"]
    assert "3 dropped from training" in prepare.format_summary(summary)


def test_repeats_within_the_training_split_are_marked_and_kept(tmp_path):
    image = encode(noise(5), "PNG")
    raw = write_raw(tmp_path / "raw", {"trainA/x.png": image, "trainB/y.png": image,
                                        **one_good_per_split()})
    summary = prepare.prepare_dataset(raw, tmp_path / "out", cfg(), progress=False)
    row = read_manifest(tmp_path / "out")["trainB/y.png"]
    assert (row["status"], row["duplicate_of"], row["output"]) == ("duplicate", "trainA/x.png",
                                                                   "trainB/y.png")
    assert summary["duplicates"]["dropped_from_train"] == 0


def test_empty_split_fails_and_keeps_the_old_output(tmp_path):
    files = one_good_per_split()
    del files["testB/good3.png"]
    files["testB/notes.txt"] = b"nothing here\n"
    files["testB/tiny.png"] = encode(Image.new("RGB", (2, 2)), "PNG")
    raw = write_raw(tmp_path / "raw", files)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous complete output")
    with pytest.raises(DataError) as caught:
        prepare.prepare_dataset(raw, out, cfg(), progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("testB: no usable image in ")
    assert str(raw / "testB") in message and "1 not an image, 1 too small" in message
    assert (out / "old.txt").read_text() == "previous complete output"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_split_folder(tmp_path):
    raw = write_raw(tmp_path / "raw", one_good_per_split())
    for path in (raw / "testA").iterdir():
        path.unlink()
    (raw / "testA").rmdir()
    with pytest.raises(DataError, match=r"testA: missing"):
        prepare.prepare_dataset(raw, tmp_path / "out", cfg(), progress=False)


def test_process_pool_gives_the_same_output(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "pool_pays", lambda tasks, background: True)
    monkeypatch.setattr(prepare, "available_cpus", lambda: 2)
    files = {f"{split}/img{i:02d}.png": encode(noise(10 * s + i, 20 + i), "PNG")
             for s, split in enumerate(prepare.SPLITS) for i in range(5)}
    files["trainA/junk.txt"] = b"junk"
    raw = write_raw(tmp_path / "raw", files)
    results = {}
    for workers in (1, 2):
        if workers == 2:  # prove the rows come from the spawned workers, not this process
            monkeypatch.setattr(prepare, "process_file", None)
        out = tmp_path / f"out{workers}"
        summary = prepare.prepare_dataset(raw, out, cfg(workers=workers, val_fraction=0.2),
                                          progress=False)
        results[workers] = (summary, (out / MANIFEST_FILE).read_text(),
                            {p.relative_to(out).as_posix(): p.read_bytes()
                             for p in sorted(out.rglob("*.png"))})
    assert results[1] == results[2]
    assert results[2][0]["outputs"] == {"trainA": 4, "trainB": 4, "valA": 1, "valB": 1,
                                        "testA": 5, "testB": 5}


def test_pool_only_when_it_pays():
    def tasks(n: int, size: int) -> list[prepare.Task]:
        return [prepare.Task("trainA", f"trainA/{i}.jpg", f"/raw/trainA/{i}.jpg",
                             f"trainA/{i}.png", size)
                for i in range(n)]

    # apple2orange: 2528 JPEGs of ~32 KB, ~6 s in one process -> the pool pays.
    assert prepare.pool_pays(tasks(2528, 32_000), "none")
    assert not prepare.pool_pays(tasks(200, 32_000), "none")
    assert prepare.pool_pays(tasks(20, 2_000_000), "none")  # few large photos
    assert prepare.pool_pays(tasks(40, 30_000), "rembg")
    assert not prepare.pool_pays(tasks(4, 30_000), "rembg")


# ---------------------------------------------------------------- the real dataset

@pytest.mark.slow
@pytest.mark.skipif(not APPLE2ORANGE.is_file(), reason=f"{APPLE2ORANGE} not present")
def test_apple2orange_at_32px(tmp_path):
    with zipfile.ZipFile(APPLE2ORANGE) as archive:
        archive.extractall(tmp_path)
    out = tmp_path / "prepared"
    summary = prepare.prepare_dataset(tmp_path / "apple2orange", out,
                                      cfg(image_size=32, workers=2, val_fraction=0.1),
                                      progress=False)
    delivered = {"trainA": 995, "trainB": 1019, "testA": 266, "testB": 248}
    assert summary["inputs"] == delivered
    assert summary["skipped"] == {}
    # The official archive holds 14 byte-identical repeats; 8 are training copies of a test
    # image (the test copy is kept), dropped by default.
    assert summary["duplicates"] == {"found": 14, "same_file": 14, "same_pixels": 0,
                                     "across_splits": 8, "dropped_from_train": 8}
    rows = read_manifest(out).values()
    held_out = {"A": 99, "B": 101}  # 10 % of the usable training images, rounded
    for split, n in delivered.items():
        dropped = sum(1 for r in rows if r["source"].startswith(f"{split}/") and not r["output"])
        val = held_out[split[-1]] if split.startswith("train") else 0
        assert summary["outputs"][split] == n - dropped - val
        written = sorted((out / split).glob("*.png"))
        assert len(written) == n - dropped - val
        with Image.open(written[0]) as img:
            assert (img.size, img.mode) == ((32, 32), "RGB")
    assert {d: summary["outputs"][f"val{d}"] for d in "AB"} == held_out
    assert sum(summary["outputs"].values()) == 2528 - 8
