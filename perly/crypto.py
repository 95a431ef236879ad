"""Encryption at rest for secrets Perly must read back (webhook secrets, provider credentials).

PERLY_ENCRYPTION_KEYS holds Fernet keys: the first encrypts, every one decrypts, so an operator
rotates by prepending a new key and running `manage.py reencrypt_secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _keys() -> list[str]:
    keys = [key.strip() for key in settings.PERLY_ENCRYPTION_KEYS if key.strip()]
    if not keys:
        derived = hashlib.sha256(b"perly-encryption:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return keys


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in _keys()])


@lru_cache(maxsize=1)
def _primary() -> Fernet:
    return Fernet(_keys()[0].encode())


def reset_keys_cache() -> None:
    _fernet.cache_clear()
    _primary.cache_clear()


def encrypt_text(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_text(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def encrypt_bytes(plaintext: bytes) -> bytes:
    return _fernet().encrypt(plaintext)


def decrypt_bytes(token: bytes) -> bytes:
    return _fernet().decrypt(token)


def encrypt_json(value: object) -> str:
    return encrypt_text(json.dumps(value, separators=(",", ":")))


def decrypt_json(token: str) -> object:
    return json.loads(decrypt_text(token))


def is_current_token(token: str) -> bool:
    """True when the first key (the one that encrypts) already decrypts this token."""
    try:
        _primary().decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate_token(token: str) -> str:
    """Re-encrypt a token under the current first key."""
    return _fernet().rotate(token.encode()).decode()
