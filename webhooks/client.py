"""The HTTP side of a delivery attempt: one POST, 15 s timeout, no redirects, pinned address.

requests-hardened's session gives us never-redirect, the default timeout and the User-Agent;
our PinnedAddressAdapter resolves the host with Perly's own address policy (webhooks.ssrf) on
every request and connects to that address while keeping Host, SNI and certificate checks on
the original hostname.
"""

from __future__ import annotations

import email.utils
import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests_hardened import Config, HTTPSession

from webhooks.ssrf import UrlNotAllowed, check_scheme, resolve_checked

USER_AGENT = "Perly-Webhooks/1"
TIMEOUT_SECONDS = 15.0
RESPONSE_BODY_LIMIT = 4096  # bytes of the receiver's answer kept on the attempt
MAX_RETRY_AFTER_SECONDS = 24 * 3600


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the address webhooks.ssrf approved for this request's host."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        hostname = host_params["host"].strip("[]")
        port = host_params["port"]
        scheme = host_params["scheme"]
        address = resolve_checked(hostname, port or (443 if scheme == "https" else 80))
        # The headers object may be shared with the caller; copy before adding Host.
        request.headers = CaseInsensitiveDict(request.headers or {})
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        request.headers["Host"] = f"{host_header}:{port}" if port else host_header
        if scheme == "https":
            # Verify the certificate and send SNI for the name, not the pinned address.
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        host_params["host"] = f"[{address}]" if ":" in address else address
        return host_params, pool_kwargs


_local = threading.local()


def _timeout() -> float:
    return float(getattr(settings, "PERLY_WEBHOOK_TIMEOUT_SECONDS", TIMEOUT_SECONDS))


def _session() -> requests.Session:
    """One session per thread, so keep-alive connections are reused across deliveries."""
    session = getattr(_local, "session", None)
    if session is None:
        config = Config(
            ip_filter_enable=False,  # our adapter below applies Perly's policy and pins the address
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(TIMEOUT_SECONDS, TIMEOUT_SECONDS),
            user_agent_override=USER_AGENT,
        )
        session = HTTPSession(config)
        session.trust_env = False  # no proxies from the environment: they would bypass the pin
        adapter = PinnedAddressAdapter(pool_maxsize=4)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _local.session = session
    return session


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


def _read_limited(response: requests.Response, deadline: float) -> str:
    """Keep up to 4 KB of the answer. Reading it to the end lets the connection be reused;
    a longer (or endlessly trickling) answer is cut and its connection dropped."""
    kept = b""
    for chunk in response.iter_content(chunk_size=RESPONSE_BODY_LIMIT):
        kept += chunk
        if len(kept) > RESPONSE_BODY_LIMIT or time.monotonic() > deadline:
            break
    return kept[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace")


def post(url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
    timeout = _timeout()
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        check_scheme(url)
        with _session().post(
            url, data=body, headers=headers, timeout=(timeout, timeout), stream=True, allow_redirects=False
        ) as response:
            text = _read_limited(response, started + 2 * timeout)
            return HttpResult(
                status_code=response.status_code,
                duration_ms=elapsed(),
                body=text,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                location=response.headers.get("Location"),
            )
    except UrlNotAllowed as exc:
        return HttpResult(None, elapsed(), error=f"url_not_allowed: {exc}", kind="url_not_allowed")
    except requests.Timeout:
        return HttpResult(None, elapsed(), error=f"timeout: no response within {timeout:g} s", kind="timeout")
    except requests.RequestException as exc:
        # A read timeout while streaming the body surfaces as a ConnectionError.
        if "timed out" in str(exc).lower():
            return HttpResult(
                None, elapsed(), error=f"timeout: no response within {timeout:g} s", kind="timeout"
            )
        return HttpResult(None, elapsed(), error=f"connection_error: {_short(exc)}", kind="connection_error")
    except (OSError, UnicodeError) as exc:
        # DNS failures (socket.gaierror) raised while pinning the address.
        return HttpResult(None, elapsed(), error=f"connection_error: {_short(exc)}", kind="connection_error")


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:400]
