"""Which webhook URLs Perly may call: absolute https URLs whose host resolves only to public
addresses. Checked at creation and again on every attempt, and the connection goes to the very
address that was checked (see client.post), so DNS rebinding cannot slip past.

PERLY_WEBHOOK_ALLOW_PRIVATE_URLS lifts the address and https rules (development and tests).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

import requests
from django.conf import settings

from perly.outbound import CheckedUrl, OutboundUrlError, checked_url

MAX_URL_LENGTH = 2048  # the same as perly.outbound.MAX_URL_LENGTH, said here for the API's help text
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


def validate_url_syntax(url: str) -> CheckedUrl:
    """The URL's checked parts (perly.outbound.checked_url: the parser urllib3 connects with),
    or InvalidWebhookUrl unless it is an absolute https URL without credentials."""
    allowed_schemes = ("https", "http") if _allow_private() else ("https",)
    try:
        return checked_url(url, schemes=allowed_schemes, max_length=MAX_URL_LENGTH)
    except OutboundUrlError as exc:
        if exc.rule == "scheme":
            raise InvalidWebhookUrl(
                "url must be an absolute https:// URL, such as 'https://example.com/hooks'."
            ) from None
        raise InvalidWebhookUrl(str(exc)) from None


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


def checked_for_delivery(url: str) -> CheckedUrl:
    """The parts an attempt connects to. A stored URL is checked again with today's rules:
    plain http only while the development flag is on, and any URL the syntax rules now refuse
    (stored before they were tightened) is refused too."""
    try:
        checked = checked_url(url, schemes=("https", "http"), max_length=MAX_URL_LENGTH)
    except OutboundUrlError as exc:
        raise UrlNotAllowed(f"Webhook URL refused: {exc}") from None
    if checked.scheme != "https" and not _allow_private():
        raise UrlNotAllowed("Webhook URLs must use https.")
    return checked


def check_url(url: str) -> CheckedUrl:
    """Full check at creation: syntax, then every resolved address. A host that does not
    resolve now is accepted (DNS may be catching up); every attempt checks again."""
    checked = validate_url_syntax(url)
    with contextlib.suppress(socket.gaierror, UnicodeError):
        resolve_checked(checked.host, checked.effective_port)
    return checked
