"""A real HTTP server on loopback for download tests: serves a folder with Range support
and can cut the first transfer of a file short, as a flaky network would."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


class RangeHandler(http.server.BaseHTTPRequestHandler):
    root: Path
    cut_after: dict[str, int]  # file name -> bytes sent before the connection drops (once)
    requests: list[tuple[str, str | None]]

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        """The size only (a dry run's listing asks for it)."""
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        path = self.root / name
        self.requests.append((name, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.cut_after.pop(name, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@contextlib.contextmanager
def serve(root: Path, cut_after: dict[str, int] | None = None) -> Iterator[tuple[str, list]]:
    """Serve `root` on 127.0.0.1; yield (base URL, list of (file, Range header) requests)."""
    requests: list[tuple[str, str | None]] = []
    handler = type("Handler", (RangeHandler,), {
        "root": Path(root), "cut_after": dict(cut_after or {}), "requests": requests,
    })
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
