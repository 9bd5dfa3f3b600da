"""The ``prepare`` stage: raw files as delivered -> ``size`` x ``size`` RGB PNGs and a manifest.

For every file under ``<raw>/{trainA,trainB,testA,testB}/`` (nested folders allowed, any image
format Pillow reads) :func:`prepare_dataset` decodes, orients, converts to RGB, optionally
removes the background, resizes by ``data.resize`` and writes ``<out>/<split><domain>/*.png``.
Files that cannot become training images are skipped with a reason; exact and pixel-identical
duplicates are reported (and dropped with ``data.drop_duplicates``). ``<out>/manifest.csv``
holds one row per input file. The output folder is replaced atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from cyclelab.config import DataConfig
from cyclelab.data import images
from cyclelab.data.background import Remover, fetch_model, make_background_remover
from cyclelab.errors import DataError, UserError
from cyclelab.io import atomic_dir
from cyclelab.paths import LABELS_FILE, SPLITS

# Canonical order. Train comes before test so that, of an image present in both, the train copy
# is the one kept: a test image that is also a training image leaks into the evaluation (the
# generator has seen it), so it is the test copy that must go.
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("split", "domain", "source", "bytes", "width", "height", "mode", "format",
                    "sha256", "status", "reason", "detail", "duplicate_of", "output")
OK, SKIPPED, DUPLICATE = "ok", "skipped", "duplicate"
UNREADABLE = "unreadable"

# When a process pool pays. Measured on 2 cores: starting two spawned workers costs ~0.85 s
# (+1.4 s each to import rembg); plain preparation of 256 px JPEGs runs at ~16 MB of input per
# second per core, rembg at a few images per second. So: ~2 s of sequential work at least.
POOL_MIN_BYTES = 32 * 2**20
POOL_MIN_FILES_REMBG = 32


@dataclass(frozen=True)
class Task:
    """One input file: where it is and where its PNG goes (``source`` relative to the raw dir,
    ``output`` to the out dir, both POSIX)."""

    split: str
    source: str
    path: str
    output: str
    bytes: int


@dataclass(frozen=True)
class Options:
    """Everything a worker needs to process files (picklable, built from ``DataConfig``)."""

    out_dir: str
    image_size: int
    resize: str
    background: str
    rembg_model: str
    background_color: tuple[int, int, int]
    rembg_model_path: str | None
    min_side: int
    max_pixels: int
    threads: int = 0


def list_files(split_dir: Path) -> list[str]:
    """Every regular file under ``split_dir`` (recursively) as sorted POSIX relative paths."""
    found = []
    for root, dirs, files in os.walk(split_dir):
        dirs.sort()
        for name in files:
            path = Path(root, name)
            if path.is_file():
                found.append(path.relative_to(split_dir).as_posix())
    return sorted(found)


def _sanitize(stem: str) -> str:
    """A file-name-safe version of ``stem`` (letters, digits, ``._-``), never empty."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:100] or "image"


def output_names(sources: Sequence[str]) -> list[str]:
    """Unique PNG names for the files of one split, in the order of ``sources``.

    A file keeps its (sanitised) stem, so ``n07740461_10011.jpg`` -> ``n07740461_10011.png``;
    stems that collide (case-insensitively, for macOS and Windows file systems: ``a/x.jpg`` and
    ``b/X.png``) get a short hash of their source path, which is stable across runs.
    """
    stems = [_sanitize(PurePosixPath(source).stem) for source in sources]
    counts = Counter(stem.lower() for stem in stems)
    names: list[str] = []
    taken: set[str] = set()
    for source, stem in zip(sources, stems, strict=True):
        name = stem
        if counts[stem.lower()] > 1:
            name = f"{stem}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"
        base, suffix = name, 1
        while name.lower() in taken:  # only if a file is literally named like a disambiguated one
            name, suffix = f"{base}-{suffix}", suffix + 1
        taken.add(name.lower())
        names.append(f"{name}.png")
    return names


def plan_tasks(raw_dir: Path) -> list[Task]:
    """Every input file of the four splits in canonical order; DataError if a split is absent."""
    tasks = []
    for split in SPLITS:
        split_dir = raw_dir / split
        if not split_dir.is_dir():
            raise DataError(f"{split_dir}: missing; the download stage delivers "
                            f"{raw_dir}/{{{','.join(SPLITS)}}} (run `dvc repro download`)")
        sources = list_files(split_dir)
        for source, name in zip(sources, output_names(sources), strict=True):
            path = split_dir / source
            tasks.append(Task(split, f"{split}/{source}", str(path), f"{split}/{name}",
                              path.stat().st_size))
    return tasks


def _row(task: Task, **fields: Any) -> dict[str, Any]:
    """A manifest row for ``task`` (``pixel_hash`` rides along for the duplicate check only)."""
    row: dict[str, Any] = {column: "" for column in MANIFEST_COLUMNS}
    row.update(split=task.split[:-1], domain=task.split[-1], source=task.source, pixel_hash="")
    row.update(fields)
    return row


def process_file(task: Task, options: Options, remove_background: Remover) -> dict[str, Any]:
    """Prepare one file: write its PNG, return its manifest row (status ``ok`` or ``skipped``)."""
    try:
        data = Path(task.path).read_bytes()
    except OSError as exc:
        return _row(task, status=SKIPPED, reason=UNREADABLE, detail=str(exc))
    row = _row(task, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    try:
        header, img = images.decode(data, max_pixels=options.max_pixels,
                                    min_side=options.min_side)
        row.update(width=header.width, height=header.height, mode=header.mode,
                   format=header.format)
        img_rgb = images.to_rgb(img)
    except images.Rejected as rejected:
        if rejected.header is not None:
            row.update(width=rejected.header.width, height=rejected.header.height,
                       mode=rejected.header.mode, format=rejected.header.format)
        row.update(status=SKIPPED, reason=rejected.reason, detail=rejected.detail)
        return row
    row["pixel_hash"] = images.pixel_hash(img_rgb)
    # Background removal sees the full-resolution image: the mask is sharper than on 32 px.
    img_rgb = remove_background(img_rgb)
    img_rgb = images.resize(img_rgb, options.image_size, options.resize,
                            options.background_color)
    Path(options.out_dir, task.output).write_bytes(images.encode_png(img_rgb))
    row.update(status=OK, output=task.output)
    return row


def mark_duplicates(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` in which every repeat of an earlier ``ok`` image is a ``duplicate``.

    A repeat has the same file bytes (sha256) or the same decoded pixels (a lossless
    re-encoding) as an earlier row; rows must be in canonical order, so the first occurrence,
    and across splits the train copy, is the one kept.
    """
    first_by_key: dict[str, dict[str, Any]] = {}
    marked = []
    for row in rows:
        row = dict(row)
        if row["status"] == OK:
            keys = (("same file", "sha256:" + row["sha256"]),
                    ("same pixels", "pixels:" + row["pixel_hash"]))
            for reason, key in keys:
                if key in first_by_key:
                    first = first_by_key[key]
                    row.update(status=DUPLICATE, reason=reason, duplicate_of=first["source"])
                    break
            else:
                for _, key in keys:
                    first_by_key[key] = row
        marked.append(row)
    return marked


def drop_duplicates(rows: Iterable[dict[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """Delete the PNGs of ``duplicate`` rows and clear their ``output`` (data.drop_duplicates)."""
    kept = []
    for row in rows:
        if row["status"] == DUPLICATE and row["output"]:
            (out_dir / row["output"]).unlink()
            row = {**row, "output": "", "detail": "dropped (data.drop_duplicates)"}
        kept.append(row)
    return kept


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts per split (inputs, outputs), skips per reason, and duplicates found and dropped."""
    folder = [f"{row['split']}{row['domain']}" for row in rows]
    duplicates = [row for row in rows if row["status"] == DUPLICATE]
    across = sum(1 for row in duplicates
                 if not row["duplicate_of"].startswith(f"{row['split']}{row['domain']}/"))
    return {
        "inputs": {split: folder.count(split) for split in SPLITS},
        "outputs": {split: sum(1 for f, row in zip(folder, rows, strict=True)
                               if f == split and row["output"]) for split in SPLITS},
        "skipped": dict(sorted(Counter(row["reason"] for row in rows
                                       if row["status"] == SKIPPED).items())),
        "duplicates": {
            "found": len(duplicates),
            "same_file": sum(1 for row in duplicates if row["reason"] == "same file"),
            "same_pixels": sum(1 for row in duplicates if row["reason"] == "same pixels"),
            "across_splits": across,
            "dropped": sum(1 for row in duplicates if not row["output"]),
        },
    }


def check_splits(summary: dict[str, Any], rows: Sequence[dict[str, Any]], raw_dir: Path) -> None:
    """:class:`DataError` naming the first split left without a single usable image."""
    for split in SPLITS:
        if summary["outputs"][split]:
            continue
        reasons = Counter(row["reason"] for row in rows
                          if f"{row['split']}{row['domain']}" == split)
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())) or "no files"
        raise DataError(f"{split}: no usable image in {raw_dir / split} ({why}); check the raw "
                        "files (re-run the download stage) or data.min_image_size / "
                        "data.max_image_pixels")


def write_manifest(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write the manifest CSV: one row per input file, columns :data:`MANIFEST_COLUMNS`."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def carry_labels(raw_labels: Path, rows: Iterable[dict[str, Any]], out_path: Path) -> int:
    """Write the raw ``labels.csv`` (if any) under the prepared names; return its row count.

    Raw rows name a file as ``<split>/<raw name>`` and its class in a ``label`` (or, as the
    digits generator writes it, ``digit``) column; images that prepare skipped or dropped lose
    their row. Output columns: split, domain, file (``testA/00007.png``), label.
    """
    if not raw_labels.is_file():
        return 0
    output_of = {row["source"]: row["output"] for row in rows if row["output"]}
    with open(raw_labels, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        column = "label" if "label" in (reader.fieldnames or ()) else "digit"
        if "file" not in (reader.fieldnames or ()) or column not in reader.fieldnames:
            raise DataError(f"{raw_labels}: expected columns file and label; got "
                            f"{reader.fieldnames}")
        carried = [(output_of[row["file"]], row[column]) for row in reader
                   if row["file"] in output_of]
    with open(out_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("split", "domain", "file", "label"))
        for output, label in sorted(carried):
            folder = output.split("/")[0]  # trainA
            writer.writerow((folder[:-1], folder[-1], output, label))
    return len(carried)


# One background remover per worker process, built by the pool's initializer.
_worker: dict[str, Any] = {}


def _init_worker(options: Options) -> None:
    """Pool initializer: build this process's remover (an ONNX session) once."""
    _worker["options"] = options
    try:
        _worker["remover"] = _make_remover(options)
    except UserError as exc:
        # Raised from the initializer it would only break the pool; re-raised from each task,
        # it reaches the main process as the one-line error it is.
        _worker["error"] = exc


def _process_in_worker(task: Task) -> dict[str, Any]:
    if "error" in _worker:
        raise _worker["error"]
    return process_file(task, _worker["options"], _worker["remover"])


def _make_remover(options: Options) -> Remover:
    return make_background_remover(
        options.background, model=options.rembg_model, color=options.background_color,
        model_path=options.rembg_model_path, threads=options.threads)


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, which containers set, where known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pool_pays(tasks: Sequence[Task], background: str) -> bool:
    """Whether ``tasks`` are enough work to repay starting worker processes."""
    if background == "none":
        return sum(task.bytes for task in tasks) >= POOL_MIN_BYTES
    return len(tasks) >= POOL_MIN_FILES_REMBG


def _run_tasks(tasks: Sequence[Task], options: Options, workers: int
               ) -> Iterator[dict[str, Any]]:
    """Rows of ``tasks`` in task order, from a process pool or, when it cannot pay, in-process."""
    workers = min(workers, available_cpus(), max(1, len(tasks)))
    if workers <= 1 or not pool_pays(tasks, options.background):
        remover = _make_remover(options)
        for task in tasks:
            yield process_file(task, options, remover)
        return
    worker_options = dataclasses.replace(options, threads=1)
    # spawn, not fork: forking a process that already runs threads (onnxruntime, torch in
    # tests, tqdm's monitor) can deadlock the child on a lock held at fork time.
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                               initializer=_init_worker, initargs=(worker_options,))
    try:
        chunk = max(1, min(32, len(tasks) // (workers * 8)))
        yield from pool.map(_process_in_worker, tasks, chunksize=chunk)
    finally:
        # On an error or Ctrl-C, drop the queued files instead of finishing the whole dataset.
        pool.shutdown(wait=True, cancel_futures=True)


def prepare_dataset(
    raw_dir: Path,
    out_dir: Path,
    cfg: DataConfig,
    *,
    rembg_model_path: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare ``raw_dir``'s four splits into ``out_dir`` (replaced atomically); return a summary.

    ``rembg_model_path`` is the ONNX file of a ``*_custom`` rembg model (default:
    ``$CYCLELAB_REMBG_MODEL_PATH``). Raises :class:`DataError` if a split folder is missing or
    ends up without a usable image. Workers are spawned processes: a script calling this with
    ``data.workers`` > 1 needs the usual ``if __name__ == "__main__":`` guard.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    tasks = plan_tasks(raw_dir)
    color = tuple(cfg.background_color)
    if cfg.background != "none":
        # Once here, so that workers do not race to download the same weights.
        fetch_model(cfg.rembg_model, rembg_model_path)
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            (tmp / split).mkdir()
        options = Options(str(tmp), cfg.image_size, cfg.resize, cfg.background, cfg.rembg_model,
                          color, rembg_model_path, cfg.min_image_size, cfg.max_image_pixels)
        bar = tqdm(_run_tasks(tasks, options, cfg.workers), total=len(tasks), unit="img",
                   desc="prepare", disable=None if progress else True)
        rows = mark_duplicates(list(bar))
        if cfg.drop_duplicates:
            rows = drop_duplicates(rows, tmp)
        summary = summarize(rows)
        check_splits(summary, rows, raw_dir)
        write_manifest(tmp / MANIFEST, rows)
        summary["labels"] = carry_labels(raw_dir / LABELS_FILE, rows, tmp / LABELS_FILE)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Two lines for the stage's output: images per split, then skips and duplicates."""
    outputs = summary["outputs"]
    line1 = "images: " + ", ".join(f"{split} {outputs[split]}" for split in SPLITS)
    skipped = summary["skipped"]
    dup = summary["duplicates"]
    skip_text = ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "none"
    line2 = (f"skipped: {skip_text}; duplicates: {dup['found']} "
             f"({dup['across_splits']} across splits), {dup['dropped']} dropped")
    return f"{line1}\n{line2}"
