"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over
"{msg_id}.{timestamp}.{body}" with the base64-decoded `whsec_` secret, sent as "v1,<base64>"."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per live secret, space-separated (two during a rotation's overlap)."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_)
