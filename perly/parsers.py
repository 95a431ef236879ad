"""The one JSON parser every request body goes through, and the checks every body gets there:
strict JSON, bounded nesting, and no NUL characters (PostgreSQL refuses them in text and jsonb,
so without this check each field would have to know, and one that forgot would be a 500)."""

from __future__ import annotations

import orjson
from rest_framework import parsers
from rest_framework.exceptions import ErrorDetail, ParseError, ValidationError

# Far above any body Perly accepts (an event's properties nest 5 levels inside the batch) and far
# below the depth at which recursive code (validators, serializers) would hit Python's limit.
MAX_DEPTH = 32
_NUL_ESCAPE = b"\\u0000"


def loads_strict(raw: bytes):
    """Parse JSON, refusing invalid UTF-8, NaN/Infinity, numbers beyond a double and nesting
    deeper than MAX_DEPTH; a NUL character in any key or value is a 400 naming its place."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise _too_deep() from None
        raise ParseError(str(exc).split(":")[0]) from None
    # Both checks walk the parsed body only when the raw bytes say they might fail.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH or _NUL_ESCAPE in raw:
        _check(data)
    return data


def _too_deep() -> ValidationError:
    return ValidationError(
        {
            "non_field_errors": [
                ErrorDetail(
                    f"The request body nests deeper than {MAX_DEPTH} levels.", code="parameter_invalid"
                )
            ]
        }
    )


def _nul(path: str) -> ValidationError:
    message = "must not contain NUL characters (\\u0000)."
    return ValidationError({path: [ErrorDetail(f"{path} {message}", code="parameter_invalid")]})


def _check(data) -> None:
    """Iterative (a recursive walk is what the depth limit protects against)."""
    stack: list[tuple[object, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise _nul(path or "body")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                raise _nul(path or "body")
            stack.append((item, f"{path}[{key}]" if path else str(key), depth + 1))


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            return {}
        return loads_strict(raw)
