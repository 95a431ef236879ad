"""Which webhook URLs Perly may call: absolute https URLs whose host resolves only to public
addresses. Checked at creation and again on every attempt, and the connection goes to the very
address that was checked (see client.post), so DNS rebinding cannot slip past.

PERLY_WEBHOOK_ALLOW_PRIVATE_URLS lifts the address and https rules (development and tests).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked before Python's generic flags so the refusal names the range a developer recognises.
_NAMED_RANGES: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...] = (
    ("carrier-grade NAT (100.64.0.0/10)", ipaddress.ip_network("100.64.0.0/10")),
    ("link-local (169.254.0.0/16)", ipaddress.ip_network("169.254.0.0/16")),
    ("private (10.0.0.0/8)", ipaddress.ip_network("10.0.0.0/8")),
    ("private (172.16.0.0/12)", ipaddress.ip_network("172.16.0.0/12")),
    ("private (192.168.0.0/16)", ipaddress.ip_network("192.168.0.0/16")),
    ("unique-local (fc00::/7)", ipaddress.ip_network("fc00::/7")),
    ("link-local (fe80::/10)", ipaddress.ip_network("fe80::/10")),
)
# IPv6 forms that embed an IPv4 address: judge the embedded one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class InvalidWebhookUrl(ValueError):
    """The URL is malformed or breaks the https/credentials/length rules (400 parameter_invalid)."""


class UrlNotAllowed(requests.RequestException):
    """The URL's host is, or resolves to, an address Perly refuses to call (400 url_not_allowed)."""


def _allow_private() -> bool:
    return bool(settings.PERLY_WEBHOOK_ALLOW_PRIVATE_URLS)


def address_refusal(ip: IPAddress) -> str | None:
    """Why Perly refuses to connect to `ip`, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = address_refusal(embedded)
            return f"IPv4-embedding form of a {reason} address" if reason else None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    for name, network in _NAMED_RANGES:
        if ip.version == network.version and ip in network:
            return name
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global:
        return "non-public"
    return None


def validate_url_syntax(url: str) -> None:
    """Raise InvalidWebhookUrl unless `url` is an absolute https URL without credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"url must be at most {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidWebhookUrl("url must not contain whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhookUrl("url is not a valid URL.")
    allowed_schemes = ("https", "http") if _allow_private() else ("https",)
    if parts.scheme not in allowed_schemes or not parts.hostname:
        raise InvalidWebhookUrl("url must be an absolute https:// URL, such as 'https://example.com/hooks'.")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("url must not contain credentials (user:password@).")
    if port == 0:
        raise InvalidWebhookUrl("url has an invalid port.")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve_checked(host: str, port: int) -> str:
    """Resolve `host` and return the address to connect to; raise UrlNotAllowed if any address
    it resolves to is refused. socket.gaierror propagates (a retryable connection problem)."""
    host = host.strip("[]")
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise socket.gaierror(f"{host} did not resolve")
    if not _allow_private():
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                shown = f"{host} resolves to" if literal is None else "the address"
                raise UrlNotAllowed(
                    f"Webhook URLs must point to public addresses: {shown} {address} ({reason})."
                )
    return str(addresses[0])


def check_scheme(url: str) -> None:
    """Plain http only while the development flag is on (checked again on every attempt)."""
    if urlsplit(url).scheme != "https" and not _allow_private():
        raise UrlNotAllowed("Webhook URLs must use https.")


def check_url(url: str) -> None:
    """Full check at creation: syntax, then every resolved address. A host that does not
    resolve now is accepted (DNS may be catching up); every attempt checks again."""
    validate_url_syntax(url)
    check_scheme(url)
    parts = urlsplit(url)
    try:
        resolve_checked(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return
