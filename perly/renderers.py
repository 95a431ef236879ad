from __future__ import annotations

import orjson
from rest_framework import renderers


def dumps(data) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


class JSONRenderer(renderers.JSONRenderer):
    """Compact JSON through orjson (several times faster than the stdlib encoder)."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        try:
            return dumps(data)
        except TypeError:
            return super().render(data, accepted_media_type, renderer_context)
