"""Logging filters: the request id on every line, and secrets masked before they are written.

Masking happens twice: when a record is created (a LogRecord factory, installed by the first
SecretMaskingFilter the LOGGING config builds), so every handler sees masked text, including ones
added later such as pytest's caplog or an error tracker; and again in the console handler's
filter, for records whose text is only known at format time (tracebacks)."""

from __future__ import annotations

import logging
import re

from perly.request_context import current_request_id

# The key formats are matched wherever they appear, with no word boundary before the prefix: a
# key glued to other text (`/v1/customers/cus_pk_live_<secret>`, `x=1pk_live_...`, `"idpk_..."`)
# is still a key. The prefixes are specific enough that over-masking costs nothing.
_SECRET_PATTERNS = [
    # Perly API keys and webhook signing secrets.
    re.compile(r"(pk_(?:live|test)_)[A-Za-z0-9]{8,}"),
    re.compile(r"(whsec_)[A-Za-z0-9+/=%]{8,}"),  # % too: base64 percent-encoded in a URL
    # Stripe secret and restricted keys.
    re.compile(r"((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{8,}"),
    # HubSpot private-app tokens (pat-na1-<uuid>).
    re.compile(r"(pat-[a-z]{2}\d-)[0-9a-fA-F-]{8,}"),
    # Salesforce access tokens (<org id>!<token>).
    re.compile(r"(00D[A-Za-z0-9]{0,15}!)[A-Za-z0-9._]{8,}"),
    # Generic forms; the lookaheads skip values already masked above, so masking is idempotent.
    re.compile(r"((?:Bearer|bearer)\s+)(?![A-Za-z0-9._\-!]*\*{3})[A-Za-z0-9._\-!]{8,}"),
    re.compile(
        r"((?:access_token|client_secret|refresh_token|api_key|password|secret|token)[\"']?\s*[:=]\s*[\"']?)"
        r"(?![^\s\"',}&]*\*{3})[^\s\"',}&]{4,}"
    ),
]


def mask_secrets(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is logging's to report, not ours
        return
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_secrets(record.exc_text)


def install_record_masking() -> None:
    """Mask every record as it is created, whichever handler later writes it. Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "perly_masks_secrets", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _mask_record(record)
        return record

    factory.perly_masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class SecretMaskingFilter(logging.Filter):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        install_record_masking()

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True
