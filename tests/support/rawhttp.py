"""Raw HTTP/1.1 over a socket, for what an HTTP library will not send: trickled bodies, endless
headers, oversized request lines."""

from __future__ import annotations

import http.client
import io
import socket
import time


def open_slow(port: int, head: bytes, body: bytes = b"") -> socket.socket:
    """A connection that sends `head` (and the start of a body), then goes quiet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head + body)
    return sock


def read_answer(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection, waiting until `deadline`."""
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no answer before the deadline; got {b''.join(chunks)!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def parse_answer(raw: bytes) -> http.client.HTTPResponse:
    class Received:
        def makefile(self, *args, **kwargs):
            return io.BytesIO(raw)

    response = http.client.HTTPResponse(Received())
    response.begin()
    return response


def exchange(port: int, raw_request: bytes, timeout: float = 10) -> http.client.HTTPResponse:
    """Send one request as given (with `Connection: close` in it) and parse the answer."""
    sock = open_slow(port, raw_request)
    try:
        return parse_answer(read_answer(sock, deadline=time.monotonic() + timeout))
    finally:
        sock.close()
