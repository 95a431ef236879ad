from __future__ import annotations

import orjson
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def loads_strict(raw: bytes):
    """Parse JSON, refusing invalid UTF-8, NaN/Infinity and nesting beyond orjson's limit."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(str(exc).split(":")[0]) from None


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            return {}
        return loads_strict(raw)
