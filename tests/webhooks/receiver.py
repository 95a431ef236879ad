"""A real HTTP receiver on 127.0.0.1 for webhook tests and the benchmark.

Each path answers from a script of replies (the last one repeats); every request is recorded
with its headers and exact body bytes so tests can verify signatures with `standardwebhooks`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    peer: tuple = ()  # the client's (address, port): one per connection


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real receiver
    disable_nagle_algorithm = True  # small answers must not wait for delayed ACKs

    def _handle(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver._record(
            Received(
                self.command, self.path, dict(self.headers.items()), body, time.time(), self.client_address
            )
        )
        reply = receiver._reply_for(self.path)
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        # Headers and body in one write: one packet per answer, like a production server.
        self._headers_buffer.append(b"\r\n" + reply.body)
        self.flush_headers()

    do_POST = _handle
    do_GET = _handle

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


class Receiver:
    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.receiver = self  # type: ignore[attr-defined]
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self.requests: list[Received] = []
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` with these replies in order; the last repeats."""
        with self._lock:
            self._scripts[path] = list(replies)

    def _reply_for(self, path: str) -> Reply:
        with self._lock:
            script = self._scripts.get(path.split("?")[0])
            if not script:
                return Reply()
            return script.pop(0) if len(script) > 1 else script[0]

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
