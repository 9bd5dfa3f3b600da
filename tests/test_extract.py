"""Safe extraction: hostile archives are refused and nothing lands outside the target."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from cyclelab.data import extract
from cyclelab.data.extract import archive_kind, extract_archive, safe_member_path
from cyclelab.errors import DataError


def make_zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED,
             ) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz",
             ) -> Path:
    with tarfile.open(path, mode) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def tar_special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.fixture
def area(tmp_path: Path) -> tuple[Path, Path]:
    """(archive folder, target folder) side by side: escapes would land in tmp_path."""
    (tmp_path / "archives").mkdir()
    return tmp_path / "archives", tmp_path / "target" / "inner"


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def test_zip_extracts_files_and_folders(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = make_zip(archives / "good.zip", {"top/trainA/a.jpg": b"x" * 10, "top/": b"",
                                               "top/testB/b.jpg": b"y" * 7},
                       compression=zipfile.ZIP_DEFLATED)
    stats = extract_archive(archive, target)
    assert (stats.files, stats.bytes) == (2, 17)
    assert (target / "top/trainA/a.jpg").read_bytes() == b"x" * 10
    assert all_files(target) == {"top/trainA/a.jpg", "top/testB/b.jpg"}


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"),
                                         (".tar.bz2", "w:bz2"), (".tar.xz", "w:xz")])
def test_tar_variants_extract(area: tuple[Path, Path], suffix: str, mode: str) -> None:
    archives, target = area
    archive = make_tar(archives / f"good{suffix}",
                       [tar_special(".", tarfile.DIRTYPE), ("./a/b.png", b"12345")], mode)
    assert archive_kind(archive) == "tar"
    stats = extract_archive(archive, target)
    assert (stats.files, stats.bytes) == (1, 5)
    assert (target / "a/b.png").read_bytes() == b"12345"


def test_select_renames_and_skips(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = make_zip(archives / "c.zip", {"leftImg8bit/train/aachen/x_leftImg8bit.png": b"1",
                                            "leftImg8bit/test/bonn/y_leftImg8bit.png": b"2"})
    stats = extract_archive(
        archive, target,
        select=lambda rel: "trainA/" + rel.rsplit("/", 1)[1] if "/train/" in rel else None)
    assert stats.files == 1
    assert all_files(target) == {"trainA/x_leftImg8bit.png"}


@pytest.mark.parametrize("name", ["../x", "a/../../x", "..\\x", "/etc/x", "C:/x", "\\\\srv\\x"])
def test_zip_refuses_escaping_names(area: tuple[Path, Path], name: str) -> None:
    archives, target = area
    archive = make_zip(archives / "evil.zip", {"fine.txt": b"ok", name: b"evil"})
    with pytest.raises(DataError, match="refused"):
        extract_archive(archive, target)
    # zips are checked whole before anything is written
    assert not target.exists() or all_files(target) == set()
    assert not (target.parent / "x").exists() and not (target.parent.parent / "x").exists()


@pytest.mark.parametrize("name", ["../x", "/abs/x"])
def test_tar_refuses_escaping_names(area: tuple[Path, Path], name: str) -> None:
    archives, target = area
    archive = make_tar(archives / "evil.tar.gz", [(name, b"evil")])
    with pytest.raises(DataError, match="refused"):
        extract_archive(archive, target)
    assert not (target.parent / "x").exists()
    assert not Path("/abs/x").exists()


def test_zip_refuses_symlink_member(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = archives / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("top/link")
        info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        extract_archive(archive, target)
    assert not (target / "top" / "link").exists()


@pytest.mark.parametrize("kind,link", [(tarfile.SYMTYPE, "/etc"), (tarfile.LNKTYPE, "a.txt")])
def test_tar_refuses_links(area: tuple[Path, Path], kind: bytes, link: str) -> None:
    archives, target = area
    archive = make_tar(archives / "links.tar", [("a.txt", b"a"), tar_special("l", kind, link),
                                                ("l/passwd", b"overwrite")], "w")
    with pytest.raises(DataError, match="is a link"):
        extract_archive(archive, target)
    assert not (target / "l").exists()
    assert not (target.parent / "l").exists()


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_refuses_devices_and_fifos(area: tuple[Path, Path], kind: bytes) -> None:
    archives, target = area
    archive = make_tar(archives / "dev.tar", [tar_special("dev/null", kind)], "w")
    with pytest.raises(DataError, match="device, FIFO"):
        extract_archive(archive, target)


def test_zip_refuses_device_mode(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = archives / "dev.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("dev")
        info.external_attr = (stat.S_IFCHR | 0o666) << 16
        zf.writestr(info, b"")
    with pytest.raises(DataError, match="device, FIFO"):
        extract_archive(archive, target)


def test_zip_bomb_over_size_cap(area: tuple[Path, Path]) -> None:
    archives, target = area
    # 2 MB of zeros compress to about 2 KB: the declared size passes a 1 MB cap.
    archive = make_zip(archives / "bomb.zip", {"zeros.png": bytes(2_000_000)},
                       compression=zipfile.ZIP_DEFLATED)
    assert archive.stat().st_size < 10_000
    with pytest.raises(DataError, match="cap of 1000000 bytes"):
        extract_archive(archive, target, max_total_bytes=1_000_000, max_ratio=1e9)
    assert all_files(target) == set()


def test_zip_header_lying_about_size(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = make_zip(archives / "liar.zip", {"a.png": bytes(300_000)},
                       compression=zipfile.ZIP_DEFLATED)
    # Rewrite the central directory's uncompressed size (offset 24 of its record) to 1000,
    # so the declared total passes a 10 kB cap while the data inflates to 300 kB.
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = (1000).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt or truncated zip"):
        extract_archive(archive, target, max_total_bytes=10_000, max_ratio=1e9)
    assert (target / "a.png").stat().st_size <= 1000


def test_tar_bomb_over_size_cap(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = make_tar(archives / "bomb.tar.gz", [("a.png", bytes(600)), ("b.png", bytes(600))])
    with pytest.raises(DataError, match="cap of 1000 bytes at 'b.png'"):
        extract_archive(archive, target, max_total_bytes=1000)
    assert all_files(target) == {"a.png"}  # written before the refusal; callers use atomic_dir


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_member_cap(area: tuple[Path, Path], kind: str) -> None:
    archives, target = area
    members = {f"f{i}.png": b"." for i in range(11)}
    if kind == "zip":
        archive = make_zip(archives / "many.zip", members)
    else:
        archive = make_tar(archives / "many.tar", list(members.items()), "w")
    with pytest.raises(DataError, match="more than 10 members"):
        extract_archive(archive, target, max_members=10)
    assert extract_archive(archive, target / "ok", max_members=11).files == 11


def test_duplicate_member_does_not_overwrite(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = make_tar(archives / "dup.tar", [("a.png", b"first"), ("a.png", b"second")], "w")
    with pytest.raises(DataError, match="clashes"):
        extract_archive(archive, target)
    assert (target / "a.png").read_bytes() == b"first"


def test_corrupt_archive_is_a_data_error(area: tuple[Path, Path]) -> None:
    archives, target = area
    good = make_zip(archives / "good.zip", {"a.txt": b"a" * 1000},
                    compression=zipfile.ZIP_DEFLATED).read_bytes()
    truncated = archives / "cut.zip"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="corrupt or truncated"):
        extract_archive(truncated, target)
    gz = archives / "cut.tar.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="corrupt or truncated tar"):
        extract_archive(gz, target)


def test_archive_kind_sniffs_unnamed_files(tmp_path: Path) -> None:
    payload = make_zip(tmp_path / "a.zip", {"x": b"1"}).read_bytes()
    (tmp_path / "download").write_bytes(payload)
    make_tar(tmp_path / "t.tar", [("x", b"1")], "w").rename(tmp_path / "blob")
    (tmp_path / "text").write_text("hello")
    kinds = [archive_kind(tmp_path / name) for name in ("download", "blob", "text")]
    assert kinds == ["zip", "tar", None]
    with pytest.raises(DataError, match="not a zip or tar"):
        extract_archive(tmp_path / "text", tmp_path / "out")


def test_safe_member_path_normalises() -> None:
    assert str(safe_member_path("./a//b/./c.png", "x.zip")) == "a/b/c.png"
    assert str(safe_member_path("a\\b.png", "x.zip")) == "a/b.png"


def deflated_zeros_zip(path: Path, members: dict[str, int]) -> Path:
    """A zip whose members are runs of zeros, deflated chunk by chunk: a ratio bomb that is
    small on disk, built without holding the inflated bytes in memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, size in members.items():
            with zf.open(name, "w") as member:
                for start in range(0, size, 1 << 20):
                    member.write(bytes(min(1 << 20, size - start)))
    return path


def test_ratio_bomb_member_is_refused_before_writing(area: tuple[Path, Path]) -> None:
    archives, target = area
    # 50 MB of zeros deflate to ~50 kB (1000:1): under the 20 GiB size cap, over 100:1.
    archive = deflated_zeros_zip(archives / "bomb.zip", {"ok.png": 10, "trainA/x.png": 50_000_000})
    assert archive.stat().st_size < 100_000
    with pytest.raises(DataError, match=r"member 'trainA/x.png' inflates \d+:1 .* limit of "
                                        r"100:1 .*data.max_compression_ratio"):
        extract_archive(archive, target)
    assert all_files(target) == set()  # refused while planning: nothing written


def test_ratio_bomb_of_many_small_members_is_refused_as_a_whole(area: tuple[Path, Path]) -> None:
    archives, target = area
    # Each member is under the 100 kB grace; together 4 MB from a few kB of archive.
    archive = deflated_zeros_zip(archives / "many.zip", {f"{i}.png": 90_000 for i in range(45)})
    with pytest.raises(DataError, match="the archive as a whole inflates"):
        extract_archive(archive, target)
    assert all_files(target) == set()
    # A tar has no per-member compressed size: its ratio is checked against the archive's.
    tar = make_tar(archives / "many.tar.gz", [(f"{i}.png", bytes(90_000)) for i in range(45)])
    with pytest.raises(DataError, match="the archive as a whole inflates"):
        extract_archive(tar, target / "t")
    written = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    assert written <= 100 * tar.stat().st_size  # stopped at 100:1 of the archive, not 4 MB


def test_ratio_limit_is_configurable(area: tuple[Path, Path]) -> None:
    archives, target = area
    archive = deflated_zeros_zip(archives / "flat.zip", {"flat.bmp": 1_000_000})
    with pytest.raises(DataError, match="limit of 100:1"):
        extract_archive(archive, target)
    assert extract_archive(archive, target, max_ratio=5000).bytes == 1_000_000


def test_ratio_limit_is_a_data_param(tiny_raw: dict) -> None:
    from cyclelab import config

    assert config.from_dict(tiny_raw).data.max_compression_ratio == 100.0
    tiny_raw["data"]["max_compression_ratio"] = 0.5
    with pytest.raises(config.ConfigError, match="max_compression_ratio"):
        config.from_dict(tiny_raw)


def test_only_images_are_extracted(area: tuple[Path, Path], capsys) -> None:
    archives, target = area
    members = {"a/trainA/1.PNG": b"png", "a/trainB/2.jpeg": b"jpg", "a/README.txt": b"read me",
               "a/.DS_Store": b"mac", "a/run.sh": b"#!/bin/sh\nrm -rf ~", "a/data.bin": b"0" * 99}
    for kind in ("zip", "tar"):
        if kind == "zip":
            archive = make_zip(archives / "mixed.zip", members)
        else:
            archive = make_tar(archives / "mixed.tar", list(members.items()), "w")
        stats = extract_archive(archive, target / kind)
        assert all_files(target / kind) == {"a/trainA/1.PNG", "a/trainB/2.jpeg"}
        assert sorted(stats.skipped) == ["a/.DS_Store", "a/README.txt", "a/data.bin", "a/run.sh"]
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1 and "skipped 4 members that are not images" in lines[0]
        assert "a/README.txt" in lines[0]


def test_free_disk_is_checked_before_extracting(area: tuple[Path, Path], monkeypatch) -> None:
    archives, target = area
    zip_archive = make_zip(archives / "fits.zip", {"a.png": b"x" * 1000})
    tar_archive = make_tar(archives / "fits.tar", [("a.png", b"x" * 1000)], "w")
    usage = extract.shutil.disk_usage(archives)
    monkeypatch.setattr(extract.shutil, "disk_usage",
                        lambda path: usage._replace(free=extract.DISK_MARGIN_BYTES + 999))
    for archive in (zip_archive, tar_archive):
        with pytest.raises(DataError, match=r"needs 1000 bytes .* free; free some space"):
            extract_archive(archive, target)
        assert all_files(target) == set()
