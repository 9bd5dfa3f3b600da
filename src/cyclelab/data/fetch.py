"""Getting one file from a URL or a local path into the download cache, verified.

Downloads stream to ``<cache>/<name>.part`` with a progress bar and are renamed to their final
name only when complete, so the cache never holds a truncated file under a final name. A
``.part`` left by an interrupted run is resumed with an HTTP Range request; a server that
ignores Range (answers 200) is downloaded again from the start. Transient failures (connection
refused or reset, timeouts, HTTP 408/429/5xx) are retried with exponential backoff; the last
failure becomes one :class:`DataError` line naming the URL and how to provide the file instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
import urllib3
from tqdm import tqdm

from cyclelab.errors import DataError
from cyclelab.io import sha256_file

_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\"\)\]]+)")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class FetchOptions:
    """How hard to try: timeouts in seconds, retries after the first attempt, backoff base.

    The wait before retry ``k`` (1-based) is ``backoff * 2 ** (k - 1)`` seconds; ``sleep`` is
    injectable so tests do not wait.
    """

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    chunk_size: int = 1 << 20
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


@dataclass(frozen=True)
class Fetched:
    """A verified local copy of one remote or local file."""

    url: str
    path: Path
    sha256: str
    bytes: int


class ChecksumError(DataError):
    """A file's sha256 differs from the pinned one (another mirror will not fix that)."""


class _Transient(Exception):
    """A failure worth retrying."""


class _Permanent(Exception):
    """A failure that a retry cannot fix (HTTP 404, a malformed URL)."""


def is_url(location: str) -> bool:
    """True for http(s) URLs (the ones fetched over the network)."""
    return urlparse(location).scheme in ("http", "https")


def local_path(location: str) -> Path:
    """The path of a ``file://`` URL or of a plain path."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(location).expanduser()


def cache_name(url: str) -> str:
    """A cache file name: the URL's own name, prefixed by a short hash of the whole URL.

    The prefix keeps two sources that share a file name (``data.zip``) apart.
    """
    name = Path(unquote(urlparse(url).path)).name or "download"
    return f"{hashlib.sha256(url.encode()).hexdigest()[:10]}-{name}"


def _reason(exc: BaseException) -> str:
    """A short, one-line reason for a network exception."""
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    text = str(exc)
    match = _ERRNO_TEXT.search(text)
    if match:
        return match.group(1).strip().lower()
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        urllib3.exceptions.ProtocolError)):
        return "connection broken during the transfer"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


def _content_range(header: str | None) -> tuple[int, int | None] | None:
    """(first byte, total size or None) of a Content-Range header, None if absent/garbled."""
    match = _CONTENT_RANGE.fullmatch((header or "").strip())
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _total_of_416(header: str | None) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", (header or "").strip())
    return int(match.group(1)) if match else None


def _body(response: requests.Response, chunk_size: int) -> Iterator[bytes]:
    """The response body in chunks, each written before the next read.

    ``read1`` returns whatever has arrived; reading whole chunks would drop the last partial
    chunk when the connection breaks, and resuming would fetch it again.
    """
    read1 = getattr(response.raw, "read1", None)  # urllib3 >= 2.3
    if read1 is None:
        yield from response.iter_content(chunk_size)
        return
    while chunk := read1(chunk_size, decode_content=True):
        yield chunk


def _fetch_once(url: str, part: Path, options: FetchOptions) -> None:
    """One attempt: resume ``part`` (or start it) and stream the rest; raise on any failure."""
    have = part.stat().st_size if part.exists() else 0
    # identity: sizes must be the bytes on the wire, or resume offsets and lengths disagree.
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = requests.get(url, headers=headers, stream=True,
                                timeout=(options.timeout, options.timeout))
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:
        raise _Permanent(f"invalid URL ({_reason(exc)})") from exc
    with response:
        status = response.status_code
        if status == 416 and have:
            if _total_of_416(response.headers.get("Content-Range")) == have:
                return  # the previous attempt had everything but the rename
            part.unlink()
            raise _Transient("the partial download does not match the server's file")
        if status in _RETRY_STATUSES:
            raise _Transient(f"HTTP {status}")
        if status >= 400:
            raise _Permanent(f"HTTP {status} {response.reason or ''}".strip())
        length = response.headers.get("Content-Length")
        if status == 206:
            span = _content_range(response.headers.get("Content-Range"))
            if span is None or span[0] != have:
                part.unlink()
                raise _Transient("the server resumed at the wrong offset")
            mode, start = "ab", have
        else:
            mode, start = "wb", 0  # 200: a fresh start, or a server that ignores Range
        encoded = response.headers.get("Content-Encoding", "identity") != "identity"
        # A length is checkable only for the bytes as sent (no transfer decoding in between).
        total = start + int(length) if length is not None and not encoded else None
        with open(part, mode) as handle, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=Path(urlparse(url).path).name or url, disable=None,
        ) as bar:
            for chunk in _body(response, options.chunk_size):
                handle.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Transient(f"connection closed after {size} of {total} bytes")


def download(url: str, dest: Path, *, options: FetchOptions | None = None,
             hint: str = "") -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), retrying transient failures.

    Raises DataError with one line: the URL, the last failure, and ``hint`` (how to provide
    the file another way).
    """
    options = options or FetchOptions()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    reason = "no attempt made"
    attempts = options.retries + 1
    for attempt in range(attempts):
        if attempt:
            options.sleep(options.backoff * 2 ** (attempt - 1))
        try:
            _fetch_once(url, part, options)
        except _Permanent as exc:
            reason, attempts = str(exc), attempt + 1
            break
        except (_Transient, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = str(exc) if isinstance(exc, _Transient) else _reason(exc)
            continue
        os.replace(part, dest)
        return dest
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    raise DataError(f"cannot download {url} ({reason}, {tries}){'; ' + hint if hint else ''}")


def fetch(location: str, cache_dir: Path, *, sha256: str = "",
          options: FetchOptions | None = None, hint: str = "") -> Fetched:
    """A verified local copy of ``location`` (http(s) URL, ``file://`` URL or path).

    URLs are downloaded into ``cache_dir`` once and reused; local files are used in place.
    When ``sha256`` is given and differs, a downloaded copy is deleted and DataError raised.
    """
    if is_url(location):
        path = Path(cache_dir) / cache_name(location)
        if not path.is_file():
            download(location, path, options=options, hint=hint)
    else:
        path = local_path(location)
        if not path.is_file():
            raise DataError(f"{location}: no such file{'; ' + hint if hint else ''}")
    digest = sha256_file(path)
    pinned = sha256.strip().lower()
    if pinned and digest != pinned:
        if is_url(location):
            path.unlink()
            kept = "the download was deleted"
        else:
            kept = "the file was left in place"
        raise ChecksumError(
            f"{location}: sha256 is {digest}, expected {pinned} ({kept}); check the source "
            "or the pinned sha256 (data.sha256 or the catalogue)"
        )
    return Fetched(url=location, path=path, sha256=digest, bytes=path.stat().st_size)


__all__ = ["FetchOptions", "Fetched", "ChecksumError", "is_url", "local_path", "sha256_file",
           "cache_name", "download", "fetch"]
