"""Atomic file and folder writes: an interrupted stage leaves its old output or nothing.

Temporary paths are named ``.<name>.tmp-<host>-<pid>-<random>`` beside their target. A stage
killed outright (SIGKILL, power loss) cannot remove its own; the next write of the same target
removes those whose process is gone, so repeated kills never fill the disk with half-written
datasets or checkpoints.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-{socket.gethostname()}-{os.getpid()}-"


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this host still runs (and, given ``started``, is the one whose
    start time psutil gave as ``f"{create_time:.2f}"``). A zombie counts as gone: a SIGKILLed
    stage whose parent died too stays one wherever PID 1 does not reap orphans (containers)."""
    import psutil

    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or f"{proc.create_time():.2f}" == started
    except psutil.AccessDenied:  # someone else's live process
        return True
    except (psutil.NoSuchProcess, ValueError):
        return False


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove the temporary paths of ``target`` left by dead processes of this host; return
    them. (A pid reused since counts as alive: at worst a leftover stays.)"""
    target, removed = Path(target), []
    host = socket.gethostname()
    for path in target.parent.glob(f".{glob.escape(target.name)}.tmp-*"):
        owner, _, rest = path.name[len(target.name) + 6:].rpartition("-")  # host-pid, random
        owner_host, _, pid = owner.rpartition("-")
        if owner_host != host or not pid.isdigit() or not rest or process_alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; on success it replaces ``target``.

    On an exception the temporary folder is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; on success it is renamed onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, name = tempfile.mkstemp(prefix=_tmp_prefix(target), dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def write_text(target: str | Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``target`` atomically."""
    write_text(target, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path, fix: str) -> Any:
    """A JSON file another stage wrote; DataError naming the file and ``fix`` when it is
    missing or not valid JSON (a corrupt or half-written metrics file is never used)."""
    from cyclelab.errors import DataError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `{fix}`") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); run `{fix}`") from None


def write_csv(target: str | Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts; columns in first-seen order) to a CSV file atomically."""
    import csv

    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def sha256_file(*paths: str | Path, missing_ok: bool = False, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of the bytes of ``paths`` in order, read in chunks (archives and weights are
    large): one file's checksum, or several files' fingerprint. With ``missing_ok`` a missing
    file counts as empty (a checkpoint's inputs before the stage that writes them has run)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        if missing_ok and not Path(path).is_file():
            continue
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
    return digest.hexdigest()
