"""API key issuing, hashing and the cached lookup that authenticates every request."""

from __future__ import annotations

import hashlib
import secrets
import string
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from perly.models import ApiKey, Workspace
from perly.scopes import effective_scopes, normalize_scopes

_BASE62 = string.ascii_letters + string.digits
SECRET_LENGTH = 40
KEY_PREFIX_LENGTH = 12


def hash_key(full_key: str) -> str:
    return hashlib.sha256(full_key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """What a request authenticated as: one key of one workspace."""

    key_id: str
    workspace_id: str
    scopes: frozenset[str]
    limits: dict
    expires_at: datetime | None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def limit_for(self, bucket: str) -> int:
        return self.limits.get(bucket) or settings.PERLY_RATE_LIMITS[bucket]


def api_key_create(
    *,
    workspace: Workspace,
    name: str = "",
    scopes: list[str] | str = ("read", "write"),
    rate_limit_read: int | None = None,
    rate_limit_write: int | None = None,
    rate_limit_events: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the full secret, which is never retrievable again."""
    mode = "test" if workspace.is_test else "live"
    full_key = f"pk_{mode}_" + "".join(secrets.choice(_BASE62) for _ in range(SECRET_LENGTH))
    key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        prefix=full_key[:KEY_PREFIX_LENGTH],
        key_hash=hash_key(full_key),
        scopes=normalize_scopes(list(scopes) if not isinstance(scopes, str) else scopes),
        rate_limit_read=rate_limit_read,
        rate_limit_write=rate_limit_write,
        rate_limit_events=rate_limit_events,
        expires_at=expires_at,
    )
    return key, full_key


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    transaction.on_commit(lambda: forget_cached_key(key.key_hash))
    forget_cached_key(key.key_hash)
    return key


def api_key_find(key_or_id: str) -> ApiKey | None:
    """Find a key by its public id (`key_...`) or by the full secret."""
    return ApiKey.objects.filter(Q(id=key_or_id) | Q(key_hash=hash_key(key_or_id))).first()


# --- The request-time lookup -----------------------------------------------------------------
class AuthFailure(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# Least recently used first; at most settings.PERLY_API_KEY_CACHE_SIZE entries, unknown keys
# included (each is cached too, so a repeated guess costs no query), so a flood of random keys
# cannot grow a worker's memory: the oldest entries are dropped instead.
_cache: OrderedDict[str, tuple[float, Principal | None, datetime | None]] = OrderedDict()
_cache_lock = threading.Lock()
_last_used_written: dict[str, float] = {}
_LAST_USED_EVERY = 60.0


def forget_cached_key(key_hash: str) -> None:
    with _cache_lock:
        _cache.pop(key_hash, None)


def clear_key_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _last_used_written.clear()


def _load(key_hash: str) -> tuple[Principal | None, datetime | None]:
    row = (
        ApiKey.objects.filter(key_hash=key_hash)
        .values(
            "id",
            "workspace_id",
            "scopes",
            "rate_limit_read",
            "rate_limit_write",
            "rate_limit_events",
            "expires_at",
            "revoked_at",
        )
        .first()
    )
    if row is None:
        return None, None
    limits = {
        bucket: row[f"rate_limit_{bucket}"]
        for bucket in ("read", "write", "events")
        if row[f"rate_limit_{bucket}"]
    }
    principal = Principal(
        key_id=row["id"],
        workspace_id=row["workspace_id"],
        scopes=effective_scopes(row["scopes"]),
        limits=limits,
        expires_at=row["expires_at"],
    )
    return principal, row["revoked_at"]


def authenticate_key(full_key: str) -> Principal:
    """Resolve a presented key; raises AuthFailure. One database query per key per 30 s."""
    if not (full_key.startswith("pk_live_") or full_key.startswith("pk_test_")) or len(full_key) < 40:
        raise AuthFailure("invalid_api_key", "Invalid API key provided.")
    key_hash = hash_key(full_key)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key_hash)
        if cached is not None:
            _cache.move_to_end(key_hash)
    if cached is None or now - cached[0] > settings.PERLY_API_KEY_CACHE_SECONDS:
        principal, revoked_at = _load(key_hash)
        _remember(key_hash, (now, principal, revoked_at))
    else:
        _, principal, revoked_at = cached
    if principal is None:
        raise AuthFailure("invalid_api_key", "Invalid API key provided.")
    if revoked_at is not None:
        raise AuthFailure("invalid_api_key", "This API key has been revoked.")
    if principal.expires_at is not None and principal.expires_at <= timezone.now():
        raise AuthFailure("api_key_expired", "This API key has expired.")
    _touch_last_used(principal.key_id, now)
    return principal


def _remember(key_hash: str, entry: tuple[float, Principal | None, datetime | None]) -> None:
    with _cache_lock:
        _cache[key_hash] = entry
        _cache.move_to_end(key_hash)
        while len(_cache) > settings.PERLY_API_KEY_CACHE_SIZE:
            _cache.popitem(last=False)


def _touch_last_used(key_id: str, now: float) -> None:
    """Record use at most once a minute per key, so reads never cost a write each."""
    if now - _last_used_written.get(key_id, -1e9) < _LAST_USED_EVERY:
        return
    _last_used_written[key_id] = now
    current = timezone.now()
    ApiKey.objects.filter(key_id_filter(key_id, current)).update(last_used_at=current)


def key_id_filter(key_id: str, current: datetime) -> Q:
    stale = current - timedelta(seconds=_LAST_USED_EVERY)
    return Q(id=key_id) & (Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale))
