"""Safe extraction of zip and tar archives (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz).

An archive from the internet is hostile until proven otherwise. A member is refused, and the
whole archive with it, when its name is absolute or climbs out with ``..``, when it is a
symbolic or hard link, a device, a FIFO or anything but a file or a folder, or when the
archive holds more members or more uncompressed bytes than the caps (zip bombs). Sizes are
counted while writing, so a header that lies about its size cannot get past the cap.

Zip bombs that stay under the size cap are refused by their compression ratio, as trusted
extractors do (Apache POI's ZipSecureFile: 100:1 with a 100 kB grace): a member, or the
archive as a whole, that inflates more than ``max_ratio`` times its compressed size is refused
before it is written. Only image files are extracted; the other members (a README, a
``.DS_Store``, a 4 GiB ``data.bin``) are skipped and named in one summary line. Before writing,
the free space on ``dest``'s disk must hold what the archive declares, plus a margin.

Files are written only below ``dest``. Tar archives are read in one streaming pass, so a
refusal may come after some files were written: callers extract into a temporary folder
(``atomic_dir``) that is removed on error.
"""

from __future__ import annotations

import lzma
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from tqdm import tqdm

from cyclelab.errors import DataError

MAX_TOTAL_BYTES = 20 * 2**30
MAX_MEMBERS = 1_000_000
MAX_RATIO = 100.0
# Below this many bytes a member's ratio is not checked: tiny files compress wildly (a
# 1 kB file of zeros is 100:1) and cannot fill a disk.
RATIO_GRACE_BYTES = 100_000
# Left free on the target disk beyond what the archive declares (logs, DVC's cache copy).
DISK_MARGIN_BYTES = 256 * 2**20
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_CHUNK = 1 << 20

# Longest suffix first: ".tar.gz" must win over ".gz".
ARCHIVE_SUFFIXES = {
    ".tar.gz": "tar", ".tar.bz2": "tar", ".tar.xz": "tar", ".tgz": "tar", ".tbz2": "tar",
    ".txz": "tar", ".tar": "tar", ".zip": "zip",
}

# A member name -> where to write it (relative to dest), or None to skip it.
Select = Callable[[str], str | None]

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Limits:
    """Caps against zip bombs: total uncompressed bytes written, members in the archive, and
    the compression ratio of a member and of the whole archive."""

    max_total_bytes: int = MAX_TOTAL_BYTES
    max_members: int = MAX_MEMBERS
    max_ratio: float = MAX_RATIO


@dataclass(frozen=True)
class ExtractStats:
    """What one extraction wrote, and the non-image members it skipped."""

    files: int
    bytes: int
    skipped: tuple[str, ...] = ()


def is_image(name: str) -> bool:
    """Whether a member name has an image file suffix (the only members extracted)."""
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def archive_kind(path: Path) -> str | None:
    """``"zip"``, ``"tar"`` or None: by file name first, then by the file's first bytes."""
    name = path.name.lower()
    for suffix, kind in ARCHIVE_SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    if path.is_file():
        if zipfile.is_zipfile(path):
            return "zip"
        if tarfile.is_tarfile(path):
            return "tar"
    return None


def safe_member_path(name: str, archive: Path | str) -> PurePosixPath:
    """The relative path of member ``name``; DataError if it is absolute or climbs out."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or _DRIVE.match(cleaned):
        _refuse(archive, name, "has an absolute path")
    parts = [part for part in cleaned.split("/") if part not in ("", ".")]
    if ".." in parts:
        _refuse(archive, name, "climbs out of the target folder with '..'")
    # "./" (the archive's own root folder, common in tars) maps to "."; a file there is refused
    # by _target, which never writes onto dest itself.
    return PurePosixPath(*parts)


def _refuse(archive: Path | str, member: str, why: str) -> None:
    raise DataError(
        f"{archive}: refused: member {member!r} {why}; the archive is unsafe, get it from a "
        "trusted source"
    )


def _target(dest: Path, rel: str, archive: Path) -> Path:
    """``dest/rel``, checked once more against escaping (select() output is validated too)."""
    path = dest.joinpath(*safe_member_path(rel, archive).parts)
    root = dest.resolve()
    if root not in path.resolve().parents:
        _refuse(archive, rel, "would be written outside the target folder")
    return path


class _Budget:
    """Counts bytes written across members and stops at the caps (size, ratio, free disk)."""

    def __init__(self, archive: Path, dest: Path, limits: Limits) -> None:
        self.archive, self.dest, self.limits, self.bytes, self.files = (
            archive, dest, limits, 0, 0)
        self.archive_bytes = max(archive.stat().st_size, 1)
        self.skipped: list[str] = []

    def check(self, n: int, member: str) -> None:
        """Raise DataError if ``n`` more bytes would pass the size cap or the archive's ratio."""
        if self.bytes + n > self.limits.max_total_bytes:
            raise DataError(
                f"{self.archive}: refused: uncompressed size passes the cap of "
                f"{self.limits.max_total_bytes} bytes at {member!r} (a zip bomb, or raise the cap)"
            )
        self.check_ratio(self.bytes + n, self.archive_bytes, member, whole=True)

    def check_ratio(self, inflated: int, compressed: int, member: str, *, whole: bool) -> None:
        """Raise DataError if ``inflated`` bytes from ``compressed`` pass the ratio limit."""
        ratio = inflated / max(compressed, 1)
        if inflated > RATIO_GRACE_BYTES and ratio > self.limits.max_ratio:
            what = "the archive as a whole" if whole else f"member {member!r}"
            raise DataError(
                f"{self.archive}: refused: {what} inflates {ratio:.0f}:1 ({inflated} bytes from "
                f"{compressed}), over the limit of {self.limits.max_ratio:g}:1 (a zip bomb, or "
                "raise data.max_compression_ratio)"
            )

    def check_disk(self, n: int) -> None:
        """Raise DataError if ``dest``'s disk cannot hold ``n`` more bytes plus a margin."""
        free = shutil.disk_usage(self.dest).free
        if n + DISK_MARGIN_BYTES > free:
            raise DataError(
                f"{self.archive}: needs {n} bytes (+{DISK_MARGIN_BYTES // 2**20} MiB margin) but "
                f"{self.dest} has {free} bytes free; free some space and run again"
            )

    def charge(self, n: int, member: str) -> None:
        """Count ``n`` bytes written (checked first)."""
        self.check(n, member)
        self.bytes += n

    def selected(self, rel: str, select: Select) -> str | None:
        """Where to write member ``rel``, or None (a non-image is skipped and remembered)."""
        if not is_image(rel):
            self.skipped.append(rel)
            return None
        return select(rel)

    def check_members(self, count: int) -> None:
        """Raise DataError if the archive has more than the allowed number of members."""
        if count > self.limits.max_members:
            raise DataError(
                f"{self.archive}: refused: more than {self.limits.max_members} members (a zip "
                "bomb, or raise the cap)"
            )


def _copy(src: IO[bytes], path: Path, budget: _Budget, member: str, archive: Path, *,
          compressed: int = 0) -> None:
    """Stream one member to ``path``; never overwrites (a duplicate name is refused).

    ``compressed``: the member's compressed size, when the format has one (zip): its ratio is
    checked again on the bytes actually written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "xb")  # "x": never overwrite; closed by the with below
    except (FileExistsError, NotADirectoryError):
        _refuse(archive, member, "clashes with another member (same name, or a file where a "
                "folder should be)")
    written = 0
    with handle:
        while chunk := src.read(_CHUNK):
            budget.charge(len(chunk), member)
            written += len(chunk)
            if compressed:
                budget.check_ratio(written, compressed, member, whole=False)
            handle.write(chunk)
    budget.files += 1


def _zip_plan(zf: zipfile.ZipFile, archive: Path, select: Select, budget: _Budget,
              ) -> list[tuple[zipfile.ZipInfo, str | None]]:
    """Check every member of a zip before anything is written; yield (info, target or None)."""
    infos = zf.infolist()
    budget.check_members(len(infos))
    plan = []
    declared = 0
    for info in infos:
        rel = str(safe_member_path(info.filename, archive))
        # Unix mode bits live in the high 16 bits of external_attr; 0 means "no Unix mode".
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            _refuse(archive, info.filename, "is a symbolic link")
        if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            _refuse(archive, info.filename, "is a device, FIFO or socket, not a file")
        if info.flag_bits & 0x1:
            raise DataError(f"{archive}: member {info.filename!r} is encrypted; unpack it yourself")
        if info.is_dir() or stat.S_ISDIR(mode):
            plan.append((info, None))
            continue
        budget.check_ratio(info.file_size, info.compress_size, info.filename, whole=False)
        target = budget.selected(rel, select)
        if target is not None:
            declared += info.file_size
        plan.append((info, target))
    budget.check(declared, "the sum of the declared sizes")
    budget.check_disk(declared)
    return plan


def _extract_zip(archive: Path, dest: Path, select: Select, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        plan = _zip_plan(zf, archive, select, budget)
        for info, target in tqdm(plan, desc=f"extract {archive.name}", unit="file",
                                 disable=None):
            if info.is_dir() or target is None:
                continue
            with zf.open(info) as src:
                _copy(src, _target(dest, target, archive), budget, info.filename, archive,
                      compressed=info.compress_size)


def _extract_tar(archive: Path, dest: Path, select: Select, budget: _Budget) -> None:
    # "r:*" reads plain and compressed tars; iterating streams, so .tar.gz is read once.
    with tarfile.open(archive, "r:*") as tf:
        count = 0
        for member in tqdm(tf, desc=f"extract {archive.name}", unit="file", disable=None):
            count += 1
            budget.check_members(count)
            rel = str(safe_member_path(member.name, archive))
            if member.issym() or member.islnk():
                _refuse(archive, member.name, "is a link")
            if member.isdir():
                continue
            if not member.isreg():
                _refuse(archive, member.name, "is a device, FIFO or other special file")
            target = budget.selected(rel, select)
            if target is None:
                continue
            # A tar member is exactly its declared size: check ratio and disk before writing.
            budget.check(member.size, member.name)
            budget.check_disk(member.size)
            src = tf.extractfile(member)
            if src is None:
                _refuse(archive, member.name, "has no data")
            with src:
                _copy(src, _target(dest, target, archive), budget, member.name, archive)


_EXTRACTORS: dict[str, Callable[[Path, Path, Select, _Budget], None]] = {
    "zip": _extract_zip,
    "tar": _extract_tar,
}


def extract_archive(
    archive: Path,
    dest: Path,
    *,
    select: Select | None = None,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> ExtractStats:
    """Extract the images of ``archive`` (zip or tar) below ``dest``, refusing anything unsafe
    (DataError).

    ``select`` maps each image member's relative path to the path to write it at (relative to
    ``dest``), or to None to skip it; by default every image keeps its path. Members that are
    not images are skipped and named in one line on stdout. Every member is checked, selected
    or not. Folders are created as files need them.
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(archive)
    if kind is None:
        raise DataError(f"{archive}: not a zip or tar archive (expected .zip, .tar, .tar.gz, .tgz)")
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(archive, dest, Limits(max_total_bytes, max_members, max_ratio))
    chosen = select or (lambda rel: rel)
    try:
        _EXTRACTORS[kind](archive, dest, chosen, budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
            NotImplementedError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise  # a real I/O problem (disk full, permissions) keeps its traceback
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{archive}: corrupt or truncated {kind} archive ({detail}); delete it and download "
            "it again"
        ) from None
    if budget.skipped:
        shown = ", ".join(budget.skipped[:5]) + (", ..." if len(budget.skipped) > 5 else "")
        print(f"extract {archive.name}: skipped {len(budget.skipped)} members that are not "
              f"images ({shown})")
    return ExtractStats(files=budget.files, bytes=budget.bytes, skipped=tuple(budget.skipped))


__all__ = ["MAX_TOTAL_BYTES", "MAX_MEMBERS", "MAX_RATIO", "IMAGE_SUFFIXES", "Limits",
           "ExtractStats", "archive_kind", "is_image", "safe_member_path", "extract_archive"]
