"""A tiny HTTP server on 127.0.0.1 for tests: serves bytes or files, honours Range requests,
and misbehaves on demand (drops the connection half-way, ignores Range, answers errors).

    with LocalServer({"/a.zip": payload}) as server:
        server.drops["/a.zip"] = [1000]      # next GET of /a.zip sends 1000 bytes, then hangs up
        fetch(server.url + "/a.zip", ...)
        server.requests                      # [("/a.zip", None), ("/a.zip", "bytes=1000-")]

``statuses`` answers errors first, ``stalls`` waits after the headers (read timeouts).

Tests never reach any other address; ``closed_port()`` gives a port where nothing listens.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_CHUNK = 1 << 16


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts in tests) are expected: no traceback on stderr."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """A loopback server; use as a context manager. Attributes may be changed while it runs."""

    def __init__(self, files: dict[str, bytes | Path] | None = None) -> None:
        self.files: dict[str, bytes | Path] = dict(files or {})
        self.requests: list[tuple[str, str | None]] = []
        # path -> byte counts: each GET of that path sends only the first count of its body
        # (after the Range offset), then closes the connection.
        self.drops: dict[str, list[int]] = {}
        # path -> HTTP statuses answered (one per GET) before the file is served.
        self.statuses: dict[str, list[int]] = {}
        # path -> seconds to stall after the headers (one per GET), to trigger read timeouts.
        self.stalls: dict[str, list[float]] = {}
        self.ignore_range = False
        self._lock = threading.Lock()
        self._httpd: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> LocalServer:
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next(self, table: dict[str, list], path: str) -> Any:
        with self._lock:
            queue = table.get(path)
            return queue.pop(0) if queue else None


def _size(body: bytes | Path) -> int:
    return len(body) if isinstance(body, bytes) else body.stat().st_size


def _chunks(body: bytes | Path, start: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of ``body`` from ``start``, in chunks (files are not read whole)."""
    if isinstance(body, bytes):
        for offset in range(start, start + count, _CHUNK):
            yield body[offset:min(offset + _CHUNK, start + count)]
        return
    with open(body, "rb") as handle:
        handle.seek(start)
        left = count
        while left > 0:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def _make_handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return  # keep test output clean

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            server.requests.append((self.path, range_header))
            status = server._next(server.statuses, self.path)
            if status is not None:
                self.send_error(status)
                return
            body = server.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            size = _size(body)
            start, end = 0, size - 1
            match = _RANGE.fullmatch(range_header or "")
            partial = match is not None and not server.ignore_range
            if partial:
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            count = end - start + 1
            self.send_response(206 if partial else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(count))
            self.send_header("Accept-Ranges", "bytes")
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            stall = server._next(server.stalls, self.path)
            if stall is not None:
                self.wfile.flush()
                time.sleep(stall)
            drop = server._next(server.drops, self.path)
            sent = 0
            for chunk in _chunks(body, start, count if drop is None else min(drop, count)):
                self.wfile.write(chunk)
                sent += len(chunk)
            if drop is not None:
                # Hang up mid-body: the client sees fewer bytes than Content-Length promised.
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
