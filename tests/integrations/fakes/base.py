"""A threaded HTTP server on 127.0.0.1 (random port) that fakes one provider's API.

Subclasses implement `route(request) -> Response`. Every request is logged (method, path,
query, headers, body). Faults are injected per path prefix: `fail(429, path, retry_after=1)`,
`fail(500, path, times=3)`, `fail(401, path, skip=2)` (let two matching requests through first).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    status: int
    path: str
    times: int = 1
    skip: int = 0
    retry_after: str | None = None
    body: object = None


class FakeProvider:
    name = "fake"

    def __init__(self):
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.delays: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeProvider:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs
            disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK stall

            def _handle(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                response = fake.dispatch(request)
                payload = b"" if response.body is None else json.dumps(response.body).encode()
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for the serve loop to notice, which it does once per poll interval:
        # the default 0.5 s cost every test ~0.4 s of teardown.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- faults and the log ---------------------------------------------------------------------
    def fail(
        self, status: int, path: str = "/", *, times: int = 1, skip: int = 0, retry_after=None, body=None
    ):
        with self._lock:
            self.faults.append(
                Fault(status, path, times, skip, None if retry_after is None else str(retry_after), body)
            )

    def slow(self, path: str, seconds: float) -> None:
        """Answer requests under `path` only after `seconds` (a long page, for races)."""
        self.delays[path] = seconds

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        return [
            r for r in self.requests if r.path.startswith(path) and (method is None or r.method == method)
        ]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _fault_for(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if not request.path.startswith(fault.path) or fault.times <= 0:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                return fault
        return None

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        for path, seconds in list(self.delays.items()):
            if request.path.startswith(path):
                threading.Event().wait(seconds)
        fault = self._fault_for(request)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return Response(fault.status, fault.body or self.error_body(fault.status), headers)
        try:
            return self.route(request)
        except Exception as exc:  # a bug in the fake must be loud, not a hang
            return Response(500, {"fake_error": repr(exc)})

    # --- for subclasses -------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def error_body(self, status: int) -> object:
        return {"error": {"message": f"injected {status}"}}
