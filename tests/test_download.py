"""The download stage: catalogue, mirror, resume, retries, checksums, sources, builders.

Every network test talks to a LocalServer on 127.0.0.1 (tests/httpserver.py), never further.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import random
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from httpserver import LocalServer, closed_port
from PIL import Image

from cyclelab.catalogue import CATALOGUE, CYCLEGAN_BASE, locations, lookup
from cyclelab.config import DataConfig, DigitsConfig, SpritesConfig
from cyclelab.data import sources
from cyclelab.data.download import SOURCE_FILE, download_dataset
from cyclelab.data.fetch import FetchOptions, cache_name, sha256_file
from cyclelab.data.sources import colorize_digit
from cyclelab.data.sources import kaggle as kaggle_source
from cyclelab.data.sources.context import BuildContext
from cyclelab.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
APPLE2ORANGE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "apple2orange.zip"
APPLE2ORANGE_SHA256 = "834e1ad6ab54c94bddd013fac29b3fc809a08efe66734595b91a7668700ba16f"
SPLITS = ("trainA", "trainB", "testA", "testB")


class Sleeps(list):
    """An injectable sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def options(retries: int = 0, sleeps: Sleeps | None = None, timeout: float = 5.0,
            ) -> FetchOptions:
    return FetchOptions(timeout=timeout, retries=retries, backoff=0.5,
                        sleep=sleeps if sleeps is not None else Sleeps())


def data_cfg(**overrides: object) -> DataConfig:
    return dataclasses.replace(DataConfig(), **overrides)


def layout_zip(counts: tuple[int, ...] = (3, 3, 3, 3), *, top: str = "mini", size: int = 20_000,
               seed: int = 0) -> bytes:
    """A zip in the official layout: <top>/<split>/<i>.jpg of random bytes (stored, so the
    archive is about sum(counts) * size bytes)."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for split, count in zip(SPLITS, counts, strict=True):
            for i in range(count):
                zf.writestr(f"{top}/{split}/{i:03d}.jpg", rng.randbytes(size))
    return buffer.getvalue()


def counts_of(out: Path) -> list[int]:
    return [len(list((out / split).iterdir())) for split in SPLITS]


def source_json(out: Path) -> dict:
    return json.loads((out / SOURCE_FILE).read_text())


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(output folder data/raw, download cache)."""
    return tmp_path / "data" / "raw", tmp_path / "cache"


# ---------------------------------------------------------------------------- catalogue

def test_catalogue_has_the_official_sets_and_the_seed_datasets() -> None:
    official = ["ae_photos", "apple2orange", "summer2winter_yosemite", "horse2zebra",
                "monet2photo", "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "maps",
                "facades", "iphone2dslr_flower", "mini", "mini_pix2pix", "mini_colorization"]
    for name in official:
        entry = lookup(name)
        assert entry.kind == "archive"
        assert entry.files[0].urls == (f"{CYCLEGAN_BASE}{name}.zip",)
        assert entry.licence
    assert CYCLEGAN_BASE == "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/"
    others = {"cityscapes": "cityscapes", "mnist2colored_mnist": "mnist_colored",
              "mnist2svhn": "mnist_svhn", "selfie2anime": "kaggle", "animals2pokemon": "kaggle",
              "digits": "digits"}
    assert {name: CATALOGUE[name].kind for name in others} == others
    assert set(CATALOGUE) == set(official) | set(others)
    assert set(entry.kind for entry in CATALOGUE.values()) <= set(sources.BUILDERS)


def test_unknown_dataset_lists_the_catalogue() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'apples'.*apple2orange"):
        lookup("apples")


def test_mirror_replaces_the_base_url() -> None:
    remote = lookup("apple2orange").files[0]
    assert locations(remote, "") == (f"{CYCLEGAN_BASE}apple2orange.zip",)
    assert locations(remote, "http://127.0.0.1:8000/sets/") == (
        "http://127.0.0.1:8000/sets/apple2orange.zip",)
    assert locations(remote, "file:///srv/sets") == ("file:///srv/sets/apple2orange.zip",)
    assert locations(remote, "/srv/sets") == ("/srv/sets/apple2orange.zip",)
    mnist = lookup("mnist2svhn").file("train-images-idx3-ubyte.gz")
    assert len(mnist.urls) == 2 and "ossci" in mnist.urls[0]


# ---------------------------------------------------------------------------- the real archive

@pytest.mark.slow
@pytest.mark.skipif(not APPLE2ORANGE.is_file(), reason=f"{APPLE2ORANGE} is not present")
def test_apple2orange_through_a_local_mirror(server: LocalServer, dirs: tuple[Path, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out, cache = dirs
    server.files["/apple2orange.zip"] = APPLE2ORANGE
    monkeypatch.setenv("CYCLELAB_MIRROR", server.url)
    record = download_dataset(data_cfg(dataset="apple2orange"), out, seed=0, cache_dir=cache,
                              fetch_options=options())
    assert counts_of(out) == [995, 1019, 266, 248]
    assert record == source_json(out)
    assert record["splits"] == {"trainA": 995, "trainB": 1019, "testA": 266, "testB": 248}
    assert record["files"] == 2528
    assert record["sha256"] == APPLE2ORANGE_SHA256
    assert record["bytes"] == APPLE2ORANGE.stat().st_size
    assert record["url"] == f"{server.url}/apple2orange.zip"
    assert record["mirror"] == server.url
    assert (out / "trainA" / "n07740461_10012.jpg").stat().st_size == 22299
    assert server.requests == [("/apple2orange.zip", None)]
    assert [p.name for p in cache.iterdir()] == [cache_name(record["url"])]


# ---------------------------------------------------------------------------- resume, retries

def test_download_killed_half_way_resumes_with_range(server: LocalServer,
                                                     dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    payload = layout_zip()
    server.files["/mini.zip"] = payload
    server.drops["/mini.zip"] = [100_000]
    cfg = data_cfg(dataset="mini", sha256=hashlib.sha256(payload).hexdigest())
    url = f"{server.url}/mini.zip"
    with pytest.raises(DataError, match=f"cannot download {url} .*1 attempt"):
        download_dataset(cfg, out, seed=0, cache_dir=cache, mirror=server.url,
                         fetch_options=options(retries=0))
    part = cache / (cache_name(url) + ".part")
    assert part.stat().st_size == 100_000
    assert not out.exists()

    record = download_dataset(cfg, out, seed=0, cache_dir=cache, mirror=server.url,
                              fetch_options=options(retries=0))
    assert server.requests == [("/mini.zip", None), ("/mini.zip", "bytes=100000-")]
    assert record["sha256"] == hashlib.sha256(payload).hexdigest()
    assert record["bytes"] == len(payload)
    assert counts_of(out) == [3, 3, 3, 3]
    assert not part.exists()


def test_retry_within_one_call_resumes_and_backs_off(server: LocalServer,
                                                     dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    payload = layout_zip(seed=1)
    server.files["/mini.zip"] = payload
    server.statuses["/mini.zip"] = [503]
    server.drops["/mini.zip"] = [70_000, 50_000]
    sleeps = Sleeps()
    record = download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache,
                              mirror=server.url, fetch_options=options(retries=3, sleeps=sleeps))
    # 503, then two drops, then the rest: exponential backoff 0.5, 1, 2 seconds.
    assert sleeps == [0.5, 1.0, 2.0]
    assert [r for _, r in server.requests] == [None, None, "bytes=70000-", "bytes=120000-"]
    assert record["sha256"] == hashlib.sha256(payload).hexdigest()


def test_server_ignoring_range_restarts_from_zero(server: LocalServer,
                                                  dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    payload = layout_zip(seed=2)
    server.files["/mini.zip"] = payload
    server.drops["/mini.zip"] = [90_000]
    server.ignore_range = True
    record = download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache,
                              mirror=server.url, fetch_options=options(retries=1))
    assert [r for _, r in server.requests] == [None, "bytes=90000-"]
    assert record["bytes"] == len(payload)
    assert record["sha256"] == hashlib.sha256(payload).hexdigest()


def test_read_timeout_is_retried(server: LocalServer, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    server.files["/mini.zip"] = layout_zip(counts=(1, 1, 1, 1), size=100)
    server.stalls["/mini.zip"] = [1.0]
    sleeps = Sleeps()
    download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache, mirror=server.url,
                     fetch_options=options(retries=1, sleeps=sleeps, timeout=0.2))
    assert sleeps == [0.5]
    assert counts_of(out) == [1, 1, 1, 1]


def test_http_404_is_not_retried(server: LocalServer, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    sleeps = Sleeps()
    with pytest.raises(DataError, match=r"mini.zip \(HTTP 404 Not Found, 1 attempt\)"):
        download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache,
                         mirror=server.url, fetch_options=options(retries=3, sleeps=sleeps))
    assert sleeps == [] and len(server.requests) == 1


def test_unreachable_host_is_one_line_with_the_fix(dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    mirror = f"http://127.0.0.1:{closed_port()}"
    sleeps = Sleeps()
    with pytest.raises(DataError) as caught:
        download_dataset(data_cfg(dataset="horse2zebra"), out, seed=0, cache_dir=cache,
                         mirror=mirror, fetch_options=options(retries=2, sleeps=sleeps))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download {mirror}/horse2zebra.zip (connection refused, "
                              "3 attempts)")
    assert "data.source" in message and "CYCLELAB_MIRROR" in message
    assert sleeps == [0.5, 1.0]
    assert not out.exists()


def test_rerun_uses_the_cache(server: LocalServer, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    server.files["/mini.zip"] = layout_zip(counts=(2, 2, 1, 1), size=50)
    first = download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache,
                             mirror=server.url, fetch_options=options())
    second = download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache,
                              mirror=server.url, fetch_options=options())
    assert len(server.requests) == 1
    assert first == second and counts_of(out) == [2, 2, 1, 1]


# ---------------------------------------------------------------------------- checksums

def test_wrong_pinned_sha256_keeps_nothing(server: LocalServer, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    out.mkdir(parents=True)
    (out / "old.txt").write_text("previous output")
    server.files["/mini.zip"] = layout_zip(counts=(1, 1, 1, 1), size=1000)
    with pytest.raises(DataError, match="sha256 is [0-9a-f]{64}, expected 0{64} .*deleted"):
        download_dataset(data_cfg(dataset="mini", sha256="0" * 64), out, seed=0,
                         cache_dir=cache, mirror=server.url, fetch_options=options())
    assert list(cache.iterdir()) == []
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert [p.name for p in out.parent.iterdir()] == ["raw"]  # no temporary folder left


def test_data_sha256_refused_for_multi_file_datasets(dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    with pytest.raises(ConfigError, match="data.sha256: pins one archive, but mnist2svhn"):
        download_dataset(data_cfg(dataset="mnist2svhn", sha256="0" * 64), out, seed=0,
                         cache_dir=cache, mirror="/nonexistent", fetch_options=options())


def test_hostile_archive_from_the_mirror_leaves_nothing(server: LocalServer,
                                                       dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mini/trainA/a.jpg", b"fine")
        zf.writestr("../../escaped.txt", b"evil")
    server.files["/mini.zip"] = buffer.getvalue()
    with pytest.raises(DataError, match="refused: member '../../escaped.txt' climbs out"):
        download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache,
                         mirror=server.url, fetch_options=options())
    assert not out.exists()
    left = {str(p.relative_to(out.parent.parent)) for p in out.parent.parent.rglob("*")}
    assert left == {"cache", "data", f"cache/{cache_name(server.url + '/mini.zip')}"}


def side_by_side(left: tuple[int, int, int], right: tuple[int, int, int]) -> bytes:
    pair = Image.new("RGB", (8, 4), left)
    pair.paste(Image.new("RGB", (4, 4), right), (4, 0))
    buffer = io.BytesIO()
    pair.save(buffer, format="PNG")
    return buffer.getvalue()


def test_aligned_pairs_are_split_into_halves(server: LocalServer,
                                             dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for phase, n in (("train", 3), ("test", 2), ("val", 1)):
            for i in range(n):
                zf.writestr(f"mini_pix2pix/{phase}/{i}.png", side_by_side((i, 0, 0), (0, 200, i)))
    server.files["/mini_pix2pix.zip"] = buffer.getvalue()
    download_dataset(data_cfg(dataset="mini_pix2pix"), out, seed=0, cache_dir=cache,
                     mirror=server.url, fetch_options=options())
    assert counts_of(out) == [3, 3, 2, 2]  # test/ wins over val/
    assert load(out / "trainA" / "2.png").shape == (4, 4, 3)
    assert load(out / "trainA" / "2.png")[0, 0].tolist() == [2, 0, 0]
    assert load(out / "trainB" / "2.png")[0, 0].tolist() == [0, 200, 2]


def test_colorization_set_gets_a_greyscale_domain(server: LocalServer,
                                                  dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for phase, n in (("train", 2), ("test", 1)):
            for i in range(n):
                zf.writestr(f"mini_colorization/{phase}/{i}.png", side_by_side((255, 0, 0),
                                                                               (0, 0, 255)))
    server.files["/mini_colorization.zip"] = buffer.getvalue()
    download_dataset(data_cfg(dataset="mini_colorization"), out, seed=0, cache_dir=cache,
                     mirror=server.url, fetch_options=options())
    assert counts_of(out) == [2, 2, 1, 1]
    grey = load(out / "trainA" / "0.png")
    assert grey.shape == (4, 8)
    assert grey[0, 0] == 76 and grey[0, 7] == 29  # ITU-R 601 luma of pure red and pure blue
    assert load(out / "trainB" / "0.png").shape == (4, 8, 3)


# ---------------------------------------------------------------------------- data.source

def write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (i, 0, 0)).save(folder / name)


@pytest.fixture
def two_folders(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    write_images(root / "cats", [f"c{i}.png" for i in range(9)] + ["sub/c9.png"])
    write_images(root / "dogs", [f"d{i}.jpg" for i in range(7)])
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_text("junk")
    return root


def test_two_folder_source_is_split_by_test_fraction(two_folders: Path,
                                                     dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    cfg = data_cfg(dataset="pets", source=str(two_folders), test_fraction=0.2)
    record = download_dataset(cfg, out, seed=0, cache_dir=cache)
    # cats: 10 -> 2 test; dogs: 7 -> round(1.4) = 1 test; notes.txt skipped.
    assert counts_of(out) == [8, 6, 2, 1]
    assert record["details"]["domains"] == {"A": "cats", "B": "dogs"}
    assert record["details"]["skipped"] == 1
    assert record["kind"] == "source:folder" and record["archives"] == []
    names = {p.name for split in ("trainA", "testA") for p in (out / split).iterdir()}
    assert "sub__c9.png" in names and len(names) == 10
    assert (two_folders / "cats" / "c0.png").exists()  # the user's files are copied, not moved

    again = download_dataset(cfg, out.parent / "again", seed=0, cache_dir=cache)
    assert again["splits"] == record["splits"]
    assert sorted(p.name for p in (out.parent / "again" / "testA").iterdir()) == sorted(
        p.name for p in (out / "testA").iterdir())
    download_dataset(cfg, out.parent / "seed1", seed=1, cache_dir=cache)
    assert sorted(p.name for p in (out.parent / "seed1" / "testA").iterdir()) != sorted(
        p.name for p in (out / "testA").iterdir())


def test_source_archive_under_one_top_folder(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    archive = tmp_path / "mine.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for split, n in zip(SPLITS, (2, 3, 1, 1), strict=True):
            for i in range(n):
                info = tarfile.TarInfo(f"mine/{split}/{i}.png")
                info.size = 3
                tf.addfile(info, io.BytesIO(b"abc"))
    record = download_dataset(data_cfg(source=f"file://{archive}"), out, seed=0,
                              cache_dir=cache)
    assert counts_of(out) == [2, 3, 1, 1]
    assert record["sha256"] == sha256_file(archive)
    assert record["kind"] == "source:archive"
    assert archive.exists()  # a local archive is read in place, never deleted


def test_source_url_with_pinned_sha256(server: LocalServer, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    payload = layout_zip(counts=(1, 2, 1, 2), size=64, top="x2y")
    server.files["/any/name.zip"] = payload
    digest = hashlib.sha256(payload).hexdigest()
    record = download_dataset(data_cfg(source=f"{server.url}/any/name.zip", sha256=digest), out,
                              seed=0, cache_dir=cache, fetch_options=options())
    assert counts_of(out) == [1, 2, 1, 2]
    assert (record["url"], record["sha256"], record["kind"]) == (
        f"{server.url}/any/name.zip", digest, "source:url")


def test_source_folder_with_three_subfolders_is_refused(tmp_path: Path,
                                                        dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    for name in ("a", "b", "c"):
        write_images(tmp_path / "src" / name, ["x.png", "y.png"])
    with pytest.raises(DataError, match="exactly two folders of images.*found a/, b/, c/"):
        download_dataset(data_cfg(source=str(tmp_path / "src")), out, seed=0, cache_dir=cache)


def test_missing_test_split_is_refused(server: LocalServer, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    server.files["/mini.zip"] = layout_zip(counts=(2, 2, 0, 0), size=10)
    with pytest.raises(DataError, match="dataset mini: gave no files for testA, testB"):
        download_dataset(data_cfg(dataset="mini"), out, seed=0, cache_dir=cache,
                         mirror=server.url, fetch_options=options())
    assert not out.exists()


def test_missing_source_path(dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    with pytest.raises(DataError, match="data.source: /no/such/folder does not exist"):
        download_dataset(data_cfg(source="/no/such/folder"), out, seed=0, cache_dir=cache)


# ---------------------------------------------------------------------------- MNIST and SVHN

def idx_gz(images: np.ndarray) -> bytes:
    n, rows, cols = images.shape
    return gzip.compress(struct.pack(">IIII", 0x803, n, rows, cols) + images.tobytes())


def svhn_mat(images: np.ndarray) -> bytes:
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, {"X": np.moveaxis(images, 0, 3), "y": np.ones((len(images), 1))})
    return buffer.getvalue()


@pytest.fixture
def mnist(server: LocalServer) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    arrays = {"train": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
              "svhn_train": rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8),
              "svhn_test": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)}
    server.files.update({
        "/train-images-idx3-ubyte.gz": idx_gz(arrays["train"]),
        "/t10k-images-idx3-ubyte.gz": idx_gz(arrays["test"]),
        "/train_32x32.mat": svhn_mat(arrays["svhn_train"]),
        "/test_32x32.mat": svhn_mat(arrays["svhn_test"]),
    })
    return arrays


def load(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def test_mnist_to_colored_mnist(server: LocalServer, mnist: dict[str, np.ndarray],
                                dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    record = download_dataset(data_cfg(dataset="mnist2colored_mnist"), out, seed=3,
                              cache_dir=cache, mirror=server.url, fetch_options=options())
    assert counts_of(out) == [5, 5, 2, 2]
    assert len(record["archives"]) == 2 and record["mirror"] == server.url
    a_names = {p.name for p in (out / "trainA").iterdir()}
    b_names = {p.name for p in (out / "trainB").iterdir()}
    assert a_names.isdisjoint(b_names) and len(a_names | b_names) == 10  # unpaired halves
    for name in a_names:
        assert np.array_equal(load(out / "trainA" / name), mnist["train"][int(name[:-4])])
    b_image = load(out / "trainB" / sorted(b_names)[0])
    assert b_image.shape == (28, 28, 3) and b_image.dtype == np.uint8

    again = out.parent / "again"
    download_dataset(data_cfg(dataset="mnist2colored_mnist"), again, seed=3, cache_dir=cache,
                     mirror=server.url, fetch_options=options())
    for split in SPLITS:
        for path in (out / split).iterdir():
            assert (again / split / path.name).read_bytes() == path.read_bytes()
    capped = download_dataset(data_cfg(dataset="mnist2colored_mnist"), out.parent / "capped",
                              seed=3, cache_dir=cache, mirror=server.url,
                              fetch_options=options(), max_per_domain=2)
    assert capped["splits"] == {"trainA": 2, "trainB": 2, "testA": 2, "testB": 2}


def test_colorize_digit_inverts_a_crop_where_the_digit_is() -> None:
    ys, xs = np.mgrid[0:40, 0:40]
    background = np.stack([ys * 6, xs * 6, np.full_like(ys, 7)], axis=-1).astype(np.uint8)
    digit = np.zeros((8, 8), np.uint8)
    digit[2:6, 3:5] = 200
    digit[0, 0] = 127  # not part of the digit: the threshold is > 127
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(5):
        result = colorize_digit(digit, background, rng)
        y, x = int(result[0, 0, 0]) // 6, int(result[0, 0, 1]) // 6
        crop = background[y:y + 8, x:x + 8]
        mask = digit > 127
        assert np.array_equal(result[~mask], crop[~mask])
        assert np.array_equal(result[mask], 255 - crop[mask])
        assert mask.sum() == 8
        seen.add((y, x))
    assert len(seen) > 1


def test_mnist_to_svhn(server: LocalServer, mnist: dict[str, np.ndarray],
                       dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    record = download_dataset(data_cfg(dataset="mnist2svhn"), out, seed=0, cache_dir=cache,
                              mirror=server.url, fetch_options=options())
    assert counts_of(out) == [10, 3, 4, 2]
    assert len(record["archives"]) == 4
    assert np.array_equal(load(out / "testA" / "00003.png"), mnist["test"][3])
    assert np.array_equal(load(out / "trainB" / "00002.png"), mnist["svhn_train"][2])
    assert np.array_equal(load(out / "testB" / "00001.png"), mnist["svhn_test"][1])


def test_truncated_mnist_file_is_a_data_error(server: LocalServer, mnist: dict,
                                              dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    server.files["/t10k-images-idx3-ubyte.gz"] = gzip.compress(
        struct.pack(">IIII", 0x803, 4, 28, 28) + bytes(100))
    with pytest.raises(DataError, match="truncated MNIST file"):
        download_dataset(data_cfg(dataset="mnist2svhn"), out, seed=0, cache_dir=cache,
                         mirror=server.url, fetch_options=options())


# ---------------------------------------------------------------------------- cityscapes

def test_cityscapes_from_the_official_zips(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    folder = tmp_path / "cityscapes_zips"
    folder.mkdir()
    photos = ["train/aachen/aachen_000000_000019", "train/bochum/bochum_000000_000313",
              "val/frankfurt/frankfurt_000000_000294", "test/berlin/berlin_000000_000019"]
    with zipfile.ZipFile(folder / "leftImg8bit_trainvaltest.zip", "w") as zf:
        zf.writestr("README", "licence")
        for stem in photos:
            zf.writestr(f"leftImg8bit/{stem}_leftImg8bit.png", b"photo")
    with zipfile.ZipFile(folder / "gtFine_trainvaltest.zip", "w") as zf:
        for stem in photos:
            for kind in ("color", "labelIds", "instanceIds"):
                zf.writestr(f"gtFine/{stem}_gtFine_{kind}.png", kind.encode())
    record = download_dataset(data_cfg(dataset="cityscapes", source=str(folder)), out, seed=0,
                              cache_dir=cache)
    assert counts_of(out) == [2, 2, 1, 1]
    assert sorted(p.name for p in (out / "trainB").iterdir()) == [
        "aachen_000000_000019_gtFine_color.png", "bochum_000000_000313_gtFine_color.png"]
    assert (out / "testA" / "frankfurt_000000_000294_leftImg8bit.png").read_bytes() == b"photo"
    assert [a["sha256"] for a in record["archives"]] == [
        sha256_file(folder / "leftImg8bit_trainvaltest.zip"),
        sha256_file(folder / "gtFine_trainvaltest.zip")]
    assert record["kind"] == "cityscapes"


def test_cityscapes_without_source_says_what_to_download(dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    with pytest.raises(DataError, match="login.*leftImg8bit_trainvaltest.zip.*data.source"):
        download_dataset(data_cfg(dataset="cityscapes"), out, seed=0, cache_dir=cache)


# ---------------------------------------------------------------------------- kaggle

FAKE_KAGGLE = '''
import os, shutil

class KaggleApi:
    def authenticate(self):
        if not os.environ.get("KAGGLE_KEY"):
            raise OSError("Could not find kaggle.json")

    def dataset_download_files(self, slug, path, unzip=False, quiet=True):
        src = os.path.join(os.environ["FAKE_KAGGLE_DIR"], slug.replace("/", "__") + ".zip")
        if not os.path.exists(src):
            raise ValueError("404 Client Error: Not Found for dataset")
        shutil.copy(src, os.path.join(path, slug.split("/")[1] + ".zip"))
'''


@pytest.fixture
def fake_kaggle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``kaggle`` package that copies zips from a folder; returns that folder."""
    package = tmp_path / "site" / "kaggle"
    (package / "api").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "api" / "__init__.py").write_text("")
    (package / "api" / "kaggle_api_extended.py").write_text(FAKE_KAGGLE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    store = tmp_path / "kaggle_store"
    store.mkdir()
    monkeypatch.setenv("FAKE_KAGGLE_DIR", str(store))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no_config"))
    yield store
    for name in [m for m in sys.modules if m == "kaggle" or m.startswith("kaggle.")]:
        del sys.modules[name]


def test_kaggle_without_package(monkeypatch: pytest.MonkeyPatch, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    real = kaggle_source.importlib.util.find_spec
    monkeypatch.setattr(kaggle_source.importlib.util, "find_spec",
                        lambda name, *args: None if name == "kaggle" else real(name, *args))
    with pytest.raises(DataError, match="kaggle package is not installed: run `.venv/bin/pip"):
        download_dataset(data_cfg(dataset="selfie2anime"), out, seed=0, cache_dir=cache)


def test_kaggle_without_credentials(fake_kaggle: Path, dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    with pytest.raises(DataError) as caught:
        download_dataset(data_cfg(dataset="selfie2anime"), out, seed=0, cache_dir=cache)
    assert str(caught.value).startswith("kaggle: no credentials")
    assert "~/.kaggle/kaggle.json" in str(caught.value) and "KAGGLE_KEY" in str(caught.value)


def test_kaggle_datasets(fake_kaggle: Path, monkeypatch: pytest.MonkeyPatch,
                         dirs: tuple[Path, Path], two_folders: Path) -> None:
    out, cache = dirs
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    (fake_kaggle / "arnaud58__selfie2anime.zip").write_bytes(
        layout_zip(counts=(3, 2, 1, 1), size=10, top="selfie2anime"))
    record = download_dataset(data_cfg(dataset="selfie2anime"), out, seed=0, cache_dir=cache)
    assert counts_of(out) == [3, 2, 1, 1]
    assert record["url"] == "kaggle:arnaud58/selfie2anime"

    # seed 004's pair: two datasets, one per domain, split by test_fraction
    for slug, folder in zip(CATALOGUE["animals2pokemon"].kaggle, ("cats", "dogs"), strict=True):
        with zipfile.ZipFile(fake_kaggle / (slug.replace("/", "__") + ".zip"), "w") as zf:
            for path in sorted((two_folders / folder).rglob("*.*")):
                zf.write(path, f"{folder}/{path.relative_to(two_folders / folder)}")
    pair = out.parent / "pair"
    record = download_dataset(data_cfg(dataset="animals2pokemon", test_fraction=0.2), pair,
                              seed=0, cache_dir=cache)
    assert counts_of(pair) == [8, 6, 2, 1]
    assert record["details"]["domains"]["B"] == "yehongjiang/pokemon-sprites-images"

    with pytest.raises(DataError, match="cannot download nobody/nothing .*404"):
        download_dataset(data_cfg(source="kaggle:nobody/nothing"), out, seed=0, cache_dir=cache)


# yehongjiang/pokemon-sprites-images as its author's notebook (PokeTypeGAN) reads it:
# pokemon_images/sprites/<NNNN>-<name>-<dex>/<view>/<palette>/*.png beside pokedex.csv.
SPRITES = {"0001-bulbasaur-1": {("front", "normal"): 8, ("front", "shiny"): 8,
                                ("back", "normal"): 2, ("back", "shiny"): 2},
           "0004-charmander-4": {("front", "normal"): 3, ("back", "normal"): 1}}
SEED004_SPRITES = SpritesConfig(views=["front"], palettes=["normal"], max_per_pokemon=6)


def write_sprites(root: Path) -> Path:
    """The sprite set's folder tree under ``root`` (``pokemon_images/``); returns ``root``."""
    (root / "pokemon_images").mkdir(parents=True)
    (root / "pokemon_images" / "pokedex.csv").write_text("id,name\n1,bulbasaur\n4,charmander\n")
    for pokemon, counts in SPRITES.items():
        for (view, palette), count in counts.items():
            folder = root / "pokemon_images" / "sprites" / pokemon / view / palette
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"gen{i}.png").write_bytes(f"{pokemon} {view} {palette} {i}".encode())
    return root


def sprite_context(tmp_path: Path, sprites: SpritesConfig, seed: int = 0) -> BuildContext:
    return BuildContext(data_cfg(sprites=sprites), tmp_path, tmp_path / "cache", seed)


def kept_sprites(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "pokemon_images" / "sprites").as_posix()
                  for p in root.rglob("*.png"))


def test_sprite_selection_keeps_front_normal_sprites_at_most_six_per_pokemon(
        tmp_path: Path) -> None:
    """seeds/004 task 2: "the normal and front-facing versions", each Pokemon "at most
    represented 6 times"; a seeded choice, the same for the same seed."""
    chosen = []
    for seed in (0, 0, 1):
        root = write_sprites(tmp_path / f"tree{len(chosen)}")
        details = kaggle_source.select_pokemon_sprites(
            root, sprite_context(tmp_path, SEED004_SPRITES, seed))
        kept = kept_sprites(root)
        assert all(name.split("/")[1:3] == ["front", "normal"] for name in kept)
        per_pokemon = {p: sum(n.startswith(p) for n in kept) for p in SPRITES}
        assert per_pokemon == {"0001-bulbasaur-1": 6, "0004-charmander-4": 3}
        assert details["kept"] == 9 and details["pokemon"] == 2
        assert not (root / "pokemon_images" / "pokedex.csv").exists()
        chosen.append(kept)
    assert chosen[0] == chosen[1] and chosen[0] != chosen[2]


def test_sprite_selection_of_views_and_palettes_alone(tmp_path: Path) -> None:
    root = write_sprites(tmp_path / "tree")
    kaggle_source.select_pokemon_sprites(
        root, sprite_context(tmp_path, SpritesConfig(views=["back"], palettes=["normal", "shiny"])))
    assert len(kept_sprites(root)) == 2 + 2 + 1
    assert all(name.split("/")[1] == "back" for name in kept_sprites(root))


def test_sprite_selection_refuses_another_layout(tmp_path: Path) -> None:
    write_images(tmp_path / "tree" / "dogs", [f"d{i}.png" for i in range(3)])
    with pytest.raises(DataError, match=r"data.sprites expects .*<pokemon>/<view>/<palette>"):
        kaggle_source.select_pokemon_sprites(tmp_path / "tree",
                                             sprite_context(tmp_path, SEED004_SPRITES))
    assert len(list((tmp_path / "tree").rglob("*.png"))) == 3  # nothing deleted


def test_animals2pokemon_selects_the_sprites_before_the_split(
        fake_kaggle: Path, monkeypatch: pytest.MonkeyPatch, dirs: tuple[Path, Path],
        tmp_path: Path, two_folders: Path) -> None:
    out, cache = dirs
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    animals, sprites = CATALOGUE["animals2pokemon"].kaggle
    with zipfile.ZipFile(fake_kaggle / (animals.replace("/", "__") + ".zip"), "w") as zf:
        for path in sorted((two_folders / "cats").rglob("*.*")):
            zf.write(path, f"animals/{path.relative_to(two_folders / 'cats')}")
    tree = write_sprites(tmp_path / "sprites")
    with zipfile.ZipFile(fake_kaggle / (sprites.replace("/", "__") + ".zip"), "w") as zf:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tree).as_posix())
    record = download_dataset(data_cfg(dataset="animals2pokemon", test_fraction=0.2,
                                       sprites=SEED004_SPRITES), out, seed=0, cache_dir=cache)
    assert counts_of(out) == [8, 7, 2, 2]  # A: 10 cats; B: 6 bulbasaur + 3 charmander
    names_b = [p.name for split in ("trainB", "testB") for p in (out / split).iterdir()]
    assert all("__front__normal__" in name for name in names_b)
    assert record["details"]["selected"]["B"]["kept"] == 9
    assert "A" not in record["details"]["selected"]


# ---------------------------------------------------------------------------- digits

def test_digits_are_generated(dirs: tuple[Path, Path]) -> None:
    out, cache = dirs
    cfg = data_cfg(dataset="digits", image_size=16,
                   digits=DigitsConfig(train_per_domain=3, test_per_domain=2))
    record = download_dataset(cfg, out, seed=0, cache_dir=cache)
    assert counts_of(out) == [3, 3, 2, 2]
    assert record["archives"] == [] and record["kind"] == "digits"
    assert record["details"]["generator"]["counts"] == record["splits"]
    assert not cache.exists()  # nothing downloaded


# ---------------------------------------------------------------------------- the stage script

def run_stage(tmp_path: Path, params: str, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess:
    (tmp_path / "params.yaml").write_text(params)
    return subprocess.run(
        [sys.executable, str(REPO / "pipeline" / "download.py"), "--cache-dir",
         str(tmp_path / "cache")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_stage_script_writes_data_raw(tmp_path: Path, two_folders: Path) -> None:
    result = run_stage(tmp_path, f"seed: 0\ndata:\n  source: {two_folders}\n")
    assert result.returncode == 0, result.stderr
    assert counts_of(tmp_path / "data" / "raw") == [8, 6, 2, 1]
    assert "trainA 8, trainB 6, testA 2, testB 1" in result.stdout


def test_stage_script_exits_2_with_one_line(tmp_path: Path, server: LocalServer) -> None:
    result = run_stage(tmp_path, "data:\n  dataset: mini\n", {"CYCLELAB_MIRROR": server.url})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"download: error: cannot download {server.url}/mini.zip (HTTP 404 Not Found, 1 attempt); "
        f"download mini.zip yourself and set data.source to the file, or set CYCLELAB_MIRROR to "
        f"a folder or URL that holds mini.zip")
    assert not (tmp_path / "data" / "raw").exists()
