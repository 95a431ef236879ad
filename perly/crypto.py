"""Encryption at rest for secrets Perly must read back (webhook secrets, provider credentials).

PERLY_ENCRYPTION_KEYS holds Fernet keys: the first encrypts, every one decrypts, so an operator
rotates by prepending a new key and running `manage.py reencrypt_secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = list(settings.PERLY_ENCRYPTION_KEYS)
    if not keys:
        derived = hashlib.sha256(b"perly-encryption:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key.strip().encode()) for key in keys])


def reset_keys_cache() -> None:
    _fernet.cache_clear()


def encrypt_text(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_text(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def encrypt_json(value: object) -> str:
    return encrypt_text(json.dumps(value, separators=(",", ":")))


def decrypt_json(token: str) -> object:
    return json.loads(decrypt_text(token))


def rotate_token(token: str) -> str:
    """Re-encrypt a token under the current first key."""
    return _fernet().rotate(token.encode()).decode()
