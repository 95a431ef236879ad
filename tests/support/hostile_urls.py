"""Hostile URL forms for every outbound use, and a trap that tells whether anything connected.

Each form aims at 127.0.0.1:<port> (the trap) while looking like `trusted` to some parser.
`SYNTAX` forms are ambiguous or malformed: every outbound use refuses them, including base URLs
from settings (where an operator may point at a loopback proxy). `HOST` forms are well-formed
URLs whose host is the loopback or not the trusted one: refused by a use's host policy (a
provider's domains, the webhook address rules), not by syntax.
"""

from __future__ import annotations

import select
import socket

SYNTAX = "syntax"
HOST = "host"


def hostile_urls(trusted: str, port: int) -> list[tuple[str, str]]:
    lo = f"127.0.0.1:{port}"
    return [
        # The finding: urlsplit reads the host after the backslash, urllib3 before it.
        (f"https://{lo}\\@{trusted}", SYNTAX),
        (f"https://{lo}\\\\@{trusted}", SYNTAX),
        (f"https://{lo}\\{trusted}", SYNTAX),
        (f"https:\\\\{lo}\\{trusted}", SYNTAX),
        (f"https:/\\{lo}", SYNTAX),
        (f"https://{lo}%5C@{trusted}", SYNTAX),
        (f"https://{lo}%2f@{trusted}", SYNTAX),
        # userinfo, in every spelling
        (f"https://{trusted}@{lo}", SYNTAX),
        (f"https://{trusted}:443@{lo}", SYNTAX),
        (f"https://user:pass@{trusted}", SYNTAX),
        (f"https://@{lo}", SYNTAX),
        (f"https://{lo}@{trusted}", SYNTAX),
        # whitespace, controls and invisible characters
        (f"https://{lo}\t@{trusted}", SYNTAX),
        (f"https://{lo} @{trusted}", SYNTAX),
        (f"https://{lo}\n@{trusted}", SYNTAX),
        (f"https://{lo}\r\n@{trusted}", SYNTAX),
        (f"https://{lo}\x00@{trusted}", SYNTAX),
        (f"https://{lo}\x7f@{trusted}", SYNTAX),
        (f" https://{lo}", SYNTAX),
        (f"https://{lo}\u200b@{trusted}", SYNTAX),
        (f"https://{lo}\u3000@{trusted}", SYNTAX),
        (f"https://{trusted}\u202e@{lo}", SYNTAX),
        (f"https://{lo}\u2028@{trusted}", SYNTAX),
        # not absolute, or not http(s)
        (f"https:{lo}", SYNTAX),
        (f"//{lo}", SYNTAX),
        (f"{lo}/x", SYNTAX),
        (f"javascript://{trusted}/%0aalert(1)", SYNTAX),
        (f"file://{lo}/etc/passwd", SYNTAX),
        (f"gopher://{lo}/_x", SYNTAX),
        # IPv4 written the ways inet_aton (and so the resolver) reads, but ipaddress does not
        (f"https://127.1:{port}", SYNTAX),
        (f"https://2130706433:{port}", SYNTAX),
        (f"https://0x7f000001:{port}", SYNTAX),
        (f"https://0177.0.0.1:{port}", SYNTAX),
        (f"https://0x7f.0.0.1:{port}", SYNTAX),
        # hosts and ports parsers disagree on
        (f"https://[fe80::1%25lo]:{port}", SYNTAX),
        (f"https://127.0.0.1.:{port}", SYNTAX),
        (f"https://{trusted}..:{port}", SYNTAX),
        (f"https://{lo}:{port}", SYNTAX),
        (f"https://127.0.0.1:+{port}", SYNTAX),
        (f"https://127.0.0.1:{port}0000", SYNTAX),
        (f"https://{lo}/" + "a" * 2100, SYNTAX),
        # well-formed, but the loopback or another host than the trusted one
        (f"https://{lo}", HOST),
        (f"HTTPS://{lo}", HOST),
        (f"https://{lo}#@{trusted}", HOST),
        (f"https://{lo}?@{trusted}", HOST),
        (f"https://{lo}/@{trusted}", HOST),
        (f"https://[::ffff:127.0.0.1]:{port}", HOST),
        (f"https://[::1]:{port}", HOST),
        (f"https://localhost:{port}", HOST),
        (f"https://0.0.0.0:{port}", HOST),
        (f"https://127\u30020\u30020\u30021:{port}", SYNTAX),  # ideographic full stops
        (f"https://{trusted}.evil.example:{port}", HOST),
        (f"https://evil.example:{port}/.{trusted}", HOST),
    ]


def syntax_forms(trusted: str, port: int) -> list[str]:
    return [url for url, kind in hostile_urls(trusted, port) if kind == SYNTAX]


class Trap:
    """A listening socket that never accepts: the kernel completes the handshake of anything
    that connects and queues it, so `connected()` is exact once the caller has returned."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def connected(self) -> bool:
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Trap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
