"""The web worker gunicorn.conf.py names: gunicorn's gthread worker with a bounded request read.

gthread hands each connection to a pool thread, which reads the request line and headers, and
then the body as the app pulls it, from a blocking socket with no deadline. A client that sends
`Content-Length: 1000` and one byte holds that thread until it gives up; a few such clients hold
them all and `/healthz` waits behind them. Here every request has PERLY_REQUEST_READ_TIMEOUT
seconds in total, from the moment a thread starts reading it, for its head and body to arrive;
past that the read fails with 408 (`request_timeout`) and the thread is free again. It bounds
each slow client; it does not make them free: the buffering proxy that must sit in front (see
docs/operations.md) is what keeps them away from the threads at all.

This module is imported by gunicorn's master before Django is set up: it imports no settings.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import ssl
import time

from django.core.exceptions import BadRequest
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers import gthread


def _read_timeout() -> float:
    raw = os.environ.get("PERLY_REQUEST_READ_TIMEOUT", "15")
    try:
        value = float(raw)
    except ValueError:
        raise RuntimeError(f"PERLY_REQUEST_READ_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise RuntimeError("PERLY_REQUEST_READ_TIMEOUT must be above 0")
    return value


READ_TIMEOUT = _read_timeout()


class RequestReadTimeout(BadRequest):
    """The request did not arrive whole in time. A BadRequest, so that inside the app (a body
    read) Django hands it to handler400, which answers 408 in the envelope."""

    status_code = 408
    code = "request_timeout"

    def __init__(self):
        super().__init__(
            f"The request did not arrive within {READ_TIMEOUT:g} seconds. Send it at once, "
            "or through a proxy that buffers it."
        )


class DeadlineUnreader(SocketUnreader):
    """Every recv waits at most until the request's deadline, then raises RequestReadTimeout."""

    deadline: float | None = None

    def chunk(self, size_hint=None):
        if self.deadline is None:
            return super().chunk(size_hint)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestReadTimeout()
        self.sock.settimeout(remaining)
        try:
            return super().chunk(size_hint)
        except TimeoutError:  # socket.timeout is an alias of it
            raise RequestReadTimeout() from None
        finally:
            # Back to blocking: the deadline bounds reading, not writing the response.
            self.sock.settimeout(None)


class BoundedConn(gthread.TConn):
    def init(self):
        # gthread calls init() each time a thread takes the connection up for a new request
        # (a new connection with data waiting, or a kept-alive one that became readable).
        super().init()
        if self.is_http2:
            return
        unreader = self.parser.unreader
        if not isinstance(unreader, DeadlineUnreader) and type(unreader) is SocketUnreader:
            bounded = DeadlineUnreader(unreader.sock, unreader.mxchunk)
            bounded.buf = unreader.buf  # bytes a protocol check may have given back
            self.parser.unreader = unreader = bounded
        if isinstance(unreader, DeadlineUnreader):
            unreader.deadline = time.monotonic() + READ_TIMEOUT


class BoundedReadWorker(gthread.ThreadWorker):
    def accept(self, listener):
        # gthread's accept(), with the connection class above.
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            self.enqueue_req(BoundedConn(self.cfg, client_sock, client_addr, listener.getsockname()))
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise

    def handle(self, conn):
        keepalive = super().handle(conn)
        if keepalive is False:
            # gthread closes a finished connection in its main loop, lingering up to 2 s for the
            # peer to close too (RFC 9112 section 9.6): a peer that never does stalls every other
            # connection of the process meanwhile. Linger here, in this pool thread, instead; the
            # main loop's close then finds the socket closed.
            conn.close(graceful=True)
        return keepalive

    def _keepalive_after(self, conn, keepalive):
        # After the answer, gthread drains an unread body before keeping the connection; a
        # request whose read deadline has passed is not worth that: close it.
        try:
            return super()._keepalive_after(conn, keepalive)
        except RequestReadTimeout:
            return False

    def handle_error(self, req, client, addr, exc):
        """gunicorn's answer to a request it could not read, in the API's error envelope rather
        than its HTML page; logged as gunicorn logs it."""
        refusal = client_error(exc, self.cfg)
        if refusal is None:
            if hasattr(req, "uri"):
                self.log.exception("Error handling request %s", req.uri)
            else:
                self.log.exception("Error handling request (no URI read)")
            refusal = (
                500,
                "Internal Server Error",
                "internal_error",
                "Something went wrong on our end. Retry later; quote the request id if it persists.",
            )
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        _write_json_error(client, *refusal)


def client_error(exc: Exception, cfg) -> tuple[int, str, str, str] | None:
    """(status, reason, code, message) for what gunicorn refuses before the app sees a request,
    with gunicorn's statuses (gunicorn.workers.base.handle_error); None for a server fault."""
    if isinstance(exc, RequestReadTimeout):
        return 408, "Request Timeout", exc.code, str(exc)
    if isinstance(
        exc,
        (
            http_errors.InvalidResponseHeader,
            http_errors.InvalidResponseHeaderName,
            http_errors.ConfigurationProblem,
        ),
    ):
        return None  # the app's or the configuration's fault, not the client's
    if isinstance(exc, http_errors.LimitRequestLine):
        message = f"The request line is longer than {cfg.limit_request_line} bytes. Send a shorter query."
        return 414, "URI Too Long", "uri_too_long", message
    if isinstance(exc, http_errors.LimitRequestHeaders):
        message = (
            f"The request has more than {cfg.limit_request_fields} header fields, or one longer "
            f"than {cfg.limit_request_field_size} bytes."
        )
        return 431, "Request Header Fields Too Large", "headers_too_large", message
    if isinstance(exc, http_errors.UnsupportedTransferCoding):
        message = "This Transfer-Encoding is not supported."
        return 501, "Not Implemented", "not_implemented", message
    if isinstance(exc, http_errors.ExpectationFailed):
        return 417, "Expectation Failed", "expectation_failed", "This Expect header is not supported."
    if isinstance(exc, (http_errors.ForbiddenProxyRequest, ssl.SSLError)):
        return 403, "Forbidden", "request_forbidden", "This connection may not send this request."
    if isinstance(exc, http_errors.ParseException):
        message = "The request is not valid HTTP/1.1: check the request line and the header syntax."
        return 400, "Bad Request", "request_malformed", message
    return None


def _write_json_error(client, status: int, reason: str, code: str, message: str) -> None:
    """An answer in the API's error envelope, written by the server itself (no app behind it)."""
    from perly.errors import error_type  # the worker has loaded the app (and Django) by now
    from perly.renderers import dumps

    request_id = "req_" + secrets.token_hex(12)
    body = dumps(
        {
            "error": {
                "type": error_type(status),
                "code": code,
                "message": message,
                "param": None,
                "request_id": request_id,
            }
        }
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRequest-Id: {request_id}\r\n\r\n"
    ).encode("latin-1")
    with contextlib.suppress(OSError):  # the client is gone: nothing to tell it
        util.write_nonblock(client, head + body)
