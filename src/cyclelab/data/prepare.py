"""The ``prepare`` stage: raw files as delivered -> ``size`` x ``size`` RGB PNGs and a manifest.

For every file under ``<raw>/{trainA,trainB,testA,testB}/`` (nested folders allowed, any image
format Pillow reads) :func:`prepare_dataset` decodes, orients, converts to RGB, optionally
removes the background (of the domains ``data.background_domains`` names), resizes by
``data.resize`` and writes ``<out>/<split><domain>/*.png``. Files that cannot become training
images are skipped with a reason. A seeded share of each domain's training images
(``data.val_fraction``) is held out as ``valA``/``valB``: every choice made during training
reads those, never the test split. Exact and pixel-identical duplicates are
reported; a training image identical to a validation or test image is dropped from training
(``data.drop_duplicates``, on by default; the test and validation splits are never changed).
``<out>/manifest.csv`` holds one row per input file, ``<out>/summary.json`` the counts. The output
folder is replaced atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
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
from cyclelab.io import atomic_dir, write_json
from cyclelab.paths import LABELS_FILE, MANIFEST_FILE, PREPARED_SPLITS, SPLITS, SUMMARY_FILE

MANIFEST_COLUMNS = ("split", "domain", "source", "bytes", "width", "height", "mode", "format",
                    "sha256", "status", "reason", "detail", "duplicate_of", "output")
OK, SKIPPED, DUPLICATE = "ok", "skipped", "duplicate"
UNREADABLE = "unreadable"
# Of an image in several splits the copy kept is the test one, then the validation one: the test
# split is what evaluate scores and is never changed, the validation split what training chooses
# by; a training copy of either leaks it into training (the generator has seen it), so it goes.
KEEP_ORDER = {"test": 0, "val": 1, "train": 2}
# The validation split is a fixed pseudo-random choice: the training images of a domain ordered
# by the sha256 of this salt and their source path, the first ones held out. It depends on the
# names only (not on the order files are listed in), and adding files keeps earlier choices.
VAL_SALT = "cyclelab-val"

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
    fill_color: tuple[int, int, int]  # what the resize policy pads with
    rembg_model_path: str | None
    min_side: int
    max_pixels: int
    threads: int = 0
    background_domains: tuple[str, ...] = ("A", "B")  # whose images the remover sees


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
    """A manifest row for ``task`` (``pixel_hash`` and ``kept_in``, the folder of the copy a
    duplicate repeats, ride along for the duplicate rules only)."""
    row: dict[str, Any] = {column: "" for column in MANIFEST_COLUMNS}
    row.update(split=task.split[:-1], domain=task.split[-1], source=task.source, pixel_hash="",
               kept_in="")
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
    if task.split[-1] in options.background_domains:
        img_rgb = remove_background(img_rgb)
    try:
        img_rgb = images.resize(img_rgb, options.image_size, options.resize,
                                options.fill_color)
    except DataError as exc:  # an image the policy cannot take (pad_only: larger than the size)
        raise DataError(f"{task.path}: {exc}") from None
    Path(options.out_dir, task.output).write_bytes(images.encode_png(img_rgb))
    row.update(status=OK, output=task.output)
    return row


def _folder(row: dict[str, Any]) -> str:
    """Where a row's image belongs: ``trainA``, ``valB``, ..."""
    return f"{row['split']}{row['domain']}"


def mark_duplicates(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` in which every repeat of an ``ok`` image is a ``duplicate``.

    A repeat has the same file bytes (sha256) or the same decoded pixels (a lossless
    re-encoding) as another row. The copy kept is the test one, then the validation one, then
    the first training one (:data:`KEEP_ORDER`); within one split the first in ``rows``' order
    (canonical: A before B, then by path). ``duplicate_of`` names the source of the copy kept.
    """
    order = sorted(range(len(rows)), key=lambda i: (KEEP_ORDER[rows[i]["split"]], i))
    first_by_key: dict[str, dict[str, Any]] = {}
    marked = [dict(row) for row in rows]
    for i in order:
        row = marked[i]
        if row["status"] != OK:
            continue
        keys = (("same file", "sha256:" + row["sha256"]),
                ("same pixels", "pixels:" + row["pixel_hash"]))
        for reason, key in keys:
            if key in first_by_key:
                first = first_by_key[key]
                row.update(status=DUPLICATE, reason=reason, duplicate_of=first["source"],
                           kept_in=_folder(first))
                break
        else:
            for _, key in keys:
                first_by_key[key] = row
    return marked


def val_count(n: int, fraction: float) -> int:
    """Images held out of ``n`` usable training images: ``fraction`` of them rounded, at least
    1 when ``fraction`` > 0 (0 when it is 0)."""
    return max(1, math.floor(fraction * n + 0.5)) if fraction > 0 else 0


def carve_validation(rows: Sequence[dict[str, Any]], fraction: float, out_dir: Path
                     ) -> list[dict[str, Any]]:
    """Copies of ``rows`` with :func:`val_count` of each domain's usable training images moved to
    ``val<domain>`` (split ``val``; their PNGs moved under ``out_dir``).

    Usable: ``ok`` and not a repeat of a test image or of another training image, so the
    validation split holds no image of the test split and no image twice. The choice is the
    :data:`VAL_SALT` order of the source paths. :class:`DataError` if a domain has too few
    usable images to keep one for training.
    """
    marked = mark_duplicates(rows)
    moved = [dict(row) for row in rows]
    for domain in "AB":
        usable = [i for i, row in enumerate(marked)
                  if row["split"] == "train" and row["domain"] == domain and row["status"] == OK]
        k = val_count(len(usable), fraction)
        if k and k >= len(usable):
            raise DataError(f"train{domain}: {len(usable)} usable image(s), too few to hold out "
                            f"{k} for val{domain} (data.val_fraction = {fraction}) and train on "
                            "the rest; add images or set data.val_fraction: 0")
        chosen = sorted(usable, key=lambda i: hashlib.sha256(
            f"{VAL_SALT}:{rows[i]['source']}".encode()).hexdigest())[:k]
        for i in chosen:
            row = moved[i]
            output = f"val{domain}/{PurePosixPath(row['output']).name}"
            os.replace(out_dir / row["output"], out_dir / output)
            row.update(split="val", output=output,
                       detail=f"held out from train{domain} (data.val_fraction)")
    return moved


def leaks(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a training image whose kept copy is a validation or test image."""
    return (row["status"] == DUPLICATE and row["split"] == "train"
            and not row["kept_in"].startswith("train"))


def drop_duplicates(rows: Iterable[dict[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """Delete the PNGs of the training images that :func:`leaks` finds and clear their
    ``output`` (data.drop_duplicates). Test and validation images, and repeats within the
    training split, stay."""
    kept = []
    for row in rows:
        if leaks(row) and row["output"]:
            (out_dir / row["output"]).unlink()
            row = {**row, "output": "",
                   "detail": f"dropped from training: the same image is in {row['kept_in']} "
                             "(data.drop_duplicates)"}
        kept.append(row)
    return kept


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts per prepared split (inputs, outputs), skips per reason, and duplicates found and
    dropped from training (``duplicates.dropped_from_train``)."""
    folder = [_folder(row) for row in rows]
    duplicates = [row for row in rows if row["status"] == DUPLICATE]
    return {
        "inputs": {split: sum(1 for row in rows if row["source"].startswith(f"{split}/"))
                   for split in SPLITS},
        "outputs": {split: sum(1 for f, row in zip(folder, rows, strict=True)
                               if f == split and row["output"]) for split in PREPARED_SPLITS},
        "skipped": dict(sorted(Counter(row["reason"] for row in rows
                                       if row["status"] == SKIPPED).items())),
        "duplicates": {
            "found": len(duplicates),
            "same_file": sum(1 for row in duplicates if row["reason"] == "same file"),
            "same_pixels": sum(1 for row in duplicates if row["reason"] == "same pixels"),
            "across_splits": sum(1 for row in duplicates if row["kept_in"] != _folder(row)),
            "dropped_from_train": sum(1 for row in duplicates
                                      if leaks(row) and not row["output"]),
        },
    }


def check_splits(summary: dict[str, Any], rows: Sequence[dict[str, Any]], raw_dir: Path) -> None:
    """:class:`DataError` naming the first raw split left without a single usable image."""
    for split in SPLITS:
        if summary["outputs"][split]:
            continue
        reasons = Counter(row["reason"] for row in rows if row["source"].startswith(f"{split}/")
                          and not row["output"])
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
    """Prepare ``raw_dir``'s four splits into ``out_dir`` (replaced atomically): the six
    folders of :data:`PREPARED_SPLITS`, the manifest, ``labels.csv`` when the raw data has one
    and ``summary.json`` (:func:`summarize` plus the label count), which is returned.

    ``rembg_model_path`` is the ONNX file of a ``*_custom`` rembg model (default:
    ``$CYCLELAB_REMBG_MODEL_PATH``). Raises :class:`DataError` if a split folder is missing or
    ends up without a usable image. Workers are spawned processes: a script calling this with
    ``data.workers`` > 1 needs the usual ``if __name__ == "__main__":`` guard.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    tasks = plan_tasks(raw_dir)
    color = tuple(cfg.background_color)
    fill = images.fill_color(cfg.resize, color, tuple(cfg.pad_color))
    if cfg.background != "none":
        # Once here, so that workers do not race to download the same weights.
        fetch_model(cfg.rembg_model, rembg_model_path)
    with atomic_dir(out_dir) as tmp:
        for split in PREPARED_SPLITS:
            (tmp / split).mkdir()
        options = Options(str(tmp), cfg.image_size, cfg.resize, cfg.background, cfg.rembg_model,
                          color, fill, rembg_model_path, cfg.min_image_size,
                          cfg.max_image_pixels,
                          background_domains=tuple(cfg.background_domains))
        bar = tqdm(_run_tasks(tasks, options, cfg.workers), total=len(tasks), unit="img",
                   desc="prepare", disable=None if progress else True)
        rows = list(bar)
        check_splits(summarize(rows), rows, raw_dir)
        rows = mark_duplicates(carve_validation(rows, cfg.val_fraction, tmp))
        if cfg.drop_duplicates:
            rows = drop_duplicates(rows, tmp)
        summary = summarize(rows)
        check_splits(summary, rows, raw_dir)  # dropping can empty a training split
        write_manifest(tmp / MANIFEST_FILE, rows)
        summary["labels"] = carry_labels(raw_dir / LABELS_FILE, rows, tmp / LABELS_FILE)
        write_json(tmp / SUMMARY_FILE, summary)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Two lines for the stage's output: images per split, then skips and duplicates."""
    outputs = summary["outputs"]
    line1 = "images: " + ", ".join(f"{split} {outputs[split]}" for split in PREPARED_SPLITS)
    skipped = summary["skipped"]
    dup = summary["duplicates"]
    skip_text = ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "none"
    line2 = (f"skipped: {skip_text}; duplicates: {dup['found']} "
             f"({dup['across_splits']} across splits), {dup['dropped_from_train']} dropped from "
             "training")
    return f"{line1}\n{line2}"
