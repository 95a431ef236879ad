"""Opaque, prefixed object ids (`cus_...`, `evt_...`).

An id is a 10-character time part (milliseconds, base36) followed by 16 random base36
characters. The random part makes ids unguessable and non-sequential; the time part makes the
newest-first order of a table equal to its id order, so a cursor page is one index range scan
at any depth. Lowercase base36 sorts the same under every database collation.
"""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TIME_LEN = 10
_RANDOM_LEN = 16
ID_BODY_LEN = _TIME_LEN + _RANDOM_LEN
ID_MAX_LENGTH = 32


def _base36(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 36)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = int(time.time() * 1000)
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LEN))
    return f"{prefix}_{_base36(millis, _TIME_LEN)}{random_part}"


def id_factory(prefix: str):
    """A named callable for model `default=` (migrations need an importable function)."""

    def make() -> str:
        return new_id(prefix)

    make.__name__ = f"new_{prefix}_id"
    make.__qualname__ = make.__name__
    # Migrations reference the default by its dotted path, so it must be a module attribute.
    globals()[make.__name__] = make
    return make


_ID_RE = re.compile(r"^([a-z]+)_[0-9a-z]{" + str(ID_BODY_LEN) + "}$")


def is_valid_id(value: object, prefix: str) -> bool:
    """True when `value` has the shape of an id with this prefix (it may still not exist)."""
    if not isinstance(value, str):
        return False
    match = _ID_RE.match(value)
    return bool(match) and match.group(1) == prefix
