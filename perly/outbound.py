"""The one gate for outbound URLs built from input or from a provider's answer.

`checked_url()` parses with urllib3's `parse_url`, the parser requests and urllib3 use when they
connect, so the host checked here is the host connected to: a second parser (`urlsplit`) read
`https://127.0.0.1:1\\@login.salesforce.com` as login.salesforce.com while urllib3 connected to
127.0.0.1. It refuses what parsers disagree on (userinfo, backslashes, whitespace, control and
format characters, legacy IPv4 spellings, zone ids, empty labels) and rebuilds the URL from the
checked parts; callers send requests to `CheckedUrl.url` (or its parts), never to the input.

Which hosts are allowed is the caller's policy: `trusted_domains` for provider hosts, and the
webhook code's own address check (webhooks/ssrf.py) for customer URLs.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
# Unicode categories refused anywhere in a URL: controls, format (zero-width, bidi overrides),
# separators (every kind of space, line and paragraph separators).
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}


class OutboundUrlError(ValueError):
    """The URL may not be called; the message is safe to show to the API user. `rule` names the
    rule broken (length, characters, scheme, credentials, port, host, domain, origin, syntax) so a
    caller can word its own sentence."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class CheckedUrl:
    scheme: str
    host: str  # lower-case ASCII (IDNA) name, or an IP address without brackets
    port: int | None  # None: the scheme's default
    path: str  # "" or starting with "/", percent-encoded as it goes on the wire
    query: str | None

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.scheme]

    @property
    def is_ip_literal(self) -> bool:
        return _ip(self.host) is not None

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def request_target(self) -> str:
        return (self.path or "/") + (f"?{self.query}" if self.query else "")

    @property
    def url(self) -> str:
        return self.origin + self.path + (f"?{self.query}" if self.query else "")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _legacy_ipv4(host: str) -> bool:
    """'127.1', '0x7f.0.0.1', '017700000001', '2130706433': inet_aton reads them as IPv4, and
    so does the resolver a connection uses; refused rather than judged as names."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _check_host(host: str, what: str) -> str:
    if host.startswith("["):
        literal = host[1:-1] if host.endswith("]") else ""
        if "%" in literal:
            raise OutboundUrlError(f"{what} must not carry an IPv6 zone id.", "host")
        address = _ip(literal)
        if not isinstance(address, ipaddress.IPv6Address):
            raise OutboundUrlError(f"{what} has an invalid IPv6 address.", "host")
        return str(address)
    address = _ip(host)
    if address is not None:
        return str(address)
    if _legacy_ipv4(host):
        raise OutboundUrlError(
            f"{what} must write an IPv4 address as four decimal numbers (a.b.c.d).", "host"
        )
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise OutboundUrlError(f"{what} has an invalid host name.", "host")
    if labels[-1].isdigit():
        raise OutboundUrlError(f"{what} has an invalid host name.", "host")
    return host


def checked_url(
    url: object,
    *,
    schemes: tuple[str, ...] = ("https",),
    trusted_domains: tuple[str, ...] | None = None,
    origin_only: bool = False,
    what: str = "url",
    max_length: int = MAX_URL_LENGTH,
) -> CheckedUrl:
    """Parse `url` as the HTTP client will, refuse anything ambiguous, and return its parts.

    `trusted_domains` ("salesforce.com", ...): the host must be one of them or a subdomain of
    one. `origin_only`: no path (beyond "/"), query or fragment. The fragment is never sent, so
    it is dropped from the rebuilt URL. Raises OutboundUrlError.
    """
    if not isinstance(url, str) or not url:
        raise OutboundUrlError(f"{what} must be a non-empty string.", "syntax")
    if len(url) > max_length:
        raise OutboundUrlError(f"{what} must be at most {max_length} characters.", "length")
    if any(ch.isspace() or unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in url):
        raise OutboundUrlError(f"{what} must not contain whitespace or control characters.", "characters")
    if "\\" in url:
        raise OutboundUrlError(f"{what} must not contain backslashes.", "characters")
    shown_schemes = " or ".join(f"{s}://" for s in schemes)
    if not _SCHEME_PREFIX.match(url):
        raise OutboundUrlError(f"{what} must be an absolute {shown_schemes} URL.", "scheme")
    try:
        parts = parse_url(url)
    except (LocationParseError, ValueError, UnicodeError):
        raise OutboundUrlError(f"{what} is not a valid URL.", "syntax") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in schemes or not parts.host:
        raise OutboundUrlError(f"{what} must be an absolute {shown_schemes} URL.", "scheme")
    if parts.auth is not None or "@" in re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]:
        raise OutboundUrlError(f"{what} must not contain credentials (user:password@).", "credentials")
    if parts.port is not None and not 0 < parts.port < 65536:
        raise OutboundUrlError(f"{what} has an invalid port.", "port")
    host = _check_host(parts.host.lower(), what)
    if trusted_domains is not None and not any(
        host == domain or host.endswith("." + domain) for domain in trusted_domains
    ):
        raise OutboundUrlError(f"{what} must be on {' or '.join(trusted_domains)}.", "domain")
    path, query = parts.path or "", parts.query
    if origin_only:
        if path not in ("", "/") or query is not None or parts.fragment is not None:
            raise OutboundUrlError(f"{what} must be an origin only (no path, query or fragment).", "origin")
        path = ""
    checked = CheckedUrl(scheme=scheme, host=host, port=parts.port, path=path, query=query)
    # The client parses the rebuilt URL again: it must read exactly the parts checked here.
    again = parse_url(checked.url)
    if (
        again.scheme,
        again.auth,
        (again.host or "").strip("[]"),
        again.port,
        again.path or "",
        again.query,
    ) != (
        scheme,
        None,
        host,
        parts.port,
        path,
        query,
    ):
        raise OutboundUrlError(f"{what} is not a valid URL.", "syntax")
    return checked
