"""What makes two external ids equal: the same text after Unicode NFC and trimming.

"café" typed on one system (U+00E9) and exported from another ("e" + U+0301) are the same id to
a person, and "acct_1 " read from a CSV is "acct_1". Every place an external id is read (customer
create and update in the API, the admin and integrations, the list filter, event ingestion)
normalizes it with this function, so the stored value, the unique constraint and every lookup
compare the same text. Case is kept: "ACCT_1" and "acct_1" stay two ids.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 255


def normalize_external_id(value: str | None) -> str | None:
    """NFC, then surrounding whitespace (any Unicode space) removed; "" becomes None."""
    if value is None:
        return None
    normalized = unicodedata.normalize("NFC", value).strip()
    return normalized or None
