"""The HTTP side of a delivery attempt: one POST, 15 s timeout, no redirects, pinned address.

Every attempt resolves the host with Perly's own address policy (webhooks.ssrf.resolve_checked)
and connects to that very address, keeping Host, SNI and certificate checks on the original
hostname. Connections are kept alive per (scheme, host, checked address, port) in each worker
thread, so a pooled connection is reused only when this attempt's check approved the address it
goes to. urllib3 is called directly: the requests session layers (request preparation, cookie and
hook merging, adapters) cost more CPU than the POST itself at delivery rates, and none of them
applied here (no redirects, no proxies, no cookies).
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import urllib3
from django.conf import settings
from requests.utils import DEFAULT_CA_BUNDLE_PATH, requote_uri
from urllib3 import exceptions as urllib3_errors

from webhooks.ssrf import UrlNotAllowed, checked_for_delivery, resolve_checked

USER_AGENT = "Perly-Webhooks/1"
TIMEOUT_SECONDS = 15.0
RESPONSE_BODY_LIMIT = 4096  # bytes of the receiver's answer kept on the attempt
MAX_RETRY_AFTER_SECONDS = 24 * 3600
# Keep-alive pools per worker thread (one connection each); the least recently used is closed.
MAX_POOLS = 32
# What requests sent besides our headers; kept so receivers see the same request as before.
_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}

_local = threading.local()


def _timeout() -> float:
    return float(getattr(settings, "PERLY_WEBHOOK_TIMEOUT_SECONDS", TIMEOUT_SECONDS))


def _pool(scheme: str, host: str, address: str, port: int) -> urllib3.HTTPConnectionPool:
    """This thread's keep-alive pool for `host` at the checked `address`."""
    pools: OrderedDict | None = getattr(_local, "pools", None)
    if pools is None:
        pools = _local.pools = OrderedDict()
    key = (scheme, host, address, port)
    pool = pools.get(key)
    if pool is not None:
        pools.move_to_end(key)
        return pool
    options = {"maxsize": 1, "block": False, "retries": False}
    if scheme == "https":
        # Connect to the address; verify the certificate and send SNI for the name.
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            cert_reqs="CERT_REQUIRED",
            ca_certs=DEFAULT_CA_BUNDLE_PATH,
            assert_hostname=host,
            server_hostname=host,
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, **options)
    pools[key] = pool
    while len(pools) > MAX_POOLS:
        pools.popitem(last=False)[1].close()
    return pool


@dataclass
class HttpResult:
    status_code: int | None
    duration_ms: int
    body: str = ""
    error: str | None = None
    # "response", "timeout", "connection_error" or "url_not_allowed"
    kind: str = "response"
    retry_after: float | None = None
    location: str | None = None


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def _read_limited(response: urllib3.BaseHTTPResponse, deadline: float) -> tuple[str, bool]:
    """Keep up to 4 KB of the answer, and whether it was read to the end (only then can the
    connection be reused); a longer (or endlessly trickling) answer is cut."""
    kept = b""
    for chunk in response.stream(RESPONSE_BODY_LIMIT, decode_content=True):
        kept += chunk
        if len(kept) > RESPONSE_BODY_LIMIT or time.monotonic() > deadline:
            return kept[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace"), False
    return kept.decode("utf-8", errors="replace"), True


def post(url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
    timeout = _timeout()
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        # The one parser and the one set of parts: what was checked is what is connected to.
        checked = checked_for_delivery(url)
        scheme, host, port = checked.scheme, checked.host, checked.effective_port
        address = resolve_checked(host, port)  # on every attempt: DNS may have changed
        request_headers = {**_DEFAULT_HEADERS, **headers, "Host": checked.netloc, "User-Agent": USER_AGENT}
        target = requote_uri(checked.path or "/") + (
            f"?{requote_uri(checked.query)}" if checked.query else ""
        )
        response = _pool(scheme, host, address, port).urlopen(
            "POST",
            target,
            body=body,
            headers=request_headers,
            redirect=False,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            preload_content=False,
            assert_same_host=False,
        )
        complete = False
        try:
            text, complete = _read_limited(response, started + 2 * timeout)
        finally:
            if not complete:
                response.close()  # drop the connection rather than read the rest
            response.release_conn()
        return HttpResult(
            status_code=response.status,
            duration_ms=elapsed(),
            body=text,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            location=response.headers.get("Location"),
        )
    except UrlNotAllowed as exc:
        return HttpResult(None, elapsed(), error=f"url_not_allowed: {exc}", kind="url_not_allowed")
    except urllib3_errors.NewConnectionError as exc:  # a subclass of urllib3's TimeoutError
        return HttpResult(None, elapsed(), error=f"connection_error: {_short(exc)}", kind="connection_error")
    except (urllib3_errors.TimeoutError, TimeoutError):
        return HttpResult(None, elapsed(), error=f"timeout: no response within {timeout:g} s", kind="timeout")
    except urllib3_errors.HTTPError as exc:
        # A read timeout while streaming the body can surface as a ProtocolError.
        if "timed out" in str(exc).lower():
            return HttpResult(
                None, elapsed(), error=f"timeout: no response within {timeout:g} s", kind="timeout"
            )
        return HttpResult(None, elapsed(), error=f"connection_error: {_short(exc)}", kind="connection_error")
    except (OSError, UnicodeError) as exc:
        # DNS failures (socket.gaierror) while resolving; socket errors urllib3 did not wrap.
        return HttpResult(None, elapsed(), error=f"connection_error: {_short(exc)}", kind="connection_error")


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:400]
