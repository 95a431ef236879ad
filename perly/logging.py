"""Logging filters: the request id on every line, and secrets masked before they are written."""

from __future__ import annotations

import logging
import re

from perly.request_context import current_request_id

_SECRET_PATTERNS = [
    re.compile(r"\b(pk_(?:live|test)_)[A-Za-z0-9]{8,}"),
    re.compile(r"\b(whsec_)[A-Za-z0-9+/=]{8,}"),
    re.compile(r"\b((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{8,}"),
    re.compile(r"((?:Bearer|bearer)\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(
        r"((?:access_token|client_secret|refresh_token|api_key|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"
    ),
]


def mask_secrets(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class SecretMaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message or record.exc_info:
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = mask_secrets(record.exc_text)
            record.msg, record.args = masked, None
        return True
