"""An HTTP proxy in front of the S3 test server that can answer 500 for a while, or to requests
matching a pattern: store faults over real HTTP."""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from urllib.parse import urlparse

_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>injected by the test proxy</Message></Error>"
)


class FaultyProxy:
    """``with FaultyProxy(upstream) as proxy: proxy.url`` — set ``fail_for(seconds, match)``."""

    def __init__(self, upstream: str) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.fail_until = 0.0
        self.match: tuple[str, str] | None = None  # (method, path substring)
        self.faults = 0
        self.seen: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        chunk = self.rfile.read(size)
                        self.rfile.readline()
                        if size == 0:
                            return b"".join(chunks)
                        chunks.append(chunk)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                if proxy.should_fail(self.command, self.path):
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_ERROR)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(_ERROR)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in {"transfer-encoding", "connection"}}  # fmt: skip
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fail_for(self, seconds: float, method: str = "", path: str = "") -> None:
        """Answer 500 to requests (those matching ``method`` and ``path``) for ``seconds``."""
        with self._lock:
            self.fail_until = time.monotonic() + seconds
            self.match = (method, path)

    def should_fail(self, method: str, path: str) -> bool:
        with self._lock:
            self.seen.append(f"{method} {path}")
            if time.monotonic() >= self.fail_until or self.match is None:
                return False
            want_method, want_path = self.match
            if (want_method and method != want_method) or (want_path and want_path not in path):
                return False
            self.faults += 1
            return True

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
