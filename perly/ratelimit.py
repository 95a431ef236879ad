"""Fixed one-minute windows per API key and bucket (`read`, `write`, `events`).

The per-key path costs one Redis round trip: a Lua script that checks and increments atomically,
so the limiter is exact under concurrency (allowed <= limit) and a batch larger than what is
left is refused whole without consuming anything. The anonymous bucket (per client address) uses
django-ratelimit, where the extra round trips do not matter. If Redis is down the limiter fails
open: serving traffic matters more than counting it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage

from perly.redis_client import get_redis

logger = logging.getLogger("perly.ratelimit")
WINDOW_SECONDS = 60

_CHECK_AND_INCR = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if current + cost > tonumber(ARGV[2]) then return {0, current} end
if cost > 0 then
  current = redis.call('INCRBY', KEYS[1], cost)
  if current == cost then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
end
return {1, current}
"""

# The same check, then (when allowed) the response cache's generation and entry: a cached
# retrieve costs this one round trip in all (perly.response_cache). A missing generation starts
# at the current time in microseconds, above any number an earlier generation key could have had.
_CHECK_AND_INCR_THEN_READ = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if current + cost > tonumber(ARGV[2]) then return {0, current} end
if cost > 0 then
  current = redis.call('INCRBY', KEYS[1], cost)
  if current == cost then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
end
local generation = redis.call('GET', KEYS[2])
if not generation then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%06d', now[2]), 'NX')
  generation = redis.call('GET', KEYS[2])
end
local entry = redis.call('GET', ARGV[4] .. generation)
return {1, current, generation, entry}
"""

# Counted fail-open decisions, exposed by /readyz (a metric an operator can alert on).
metrics = {"ratelimit_fail_open_total": 0}


@dataclass(frozen=True)
class RateState:
    bucket: str
    limit: int
    remaining: int
    reset: int
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Resource": self.bucket,
        }

    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset - time.time()))


class _LocalCounters:
    """The embedded default's counters (one process, no Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._window = 0

    def check_and_incr(self, key: str, cost: int, limit: int, window: int) -> tuple[bool, int]:
        with self._lock:
            if window != self._window:
                self._counts.clear()
                self._window = window
            current = self._counts.get(key, 0)
            if current + cost > limit:
                return False, current
            self._counts[key] = current + cost
            return True, current + cost


_local = _LocalCounters()
_script = None
_read_script = None


def _redis_check_and_incr(client, key: str, cost: int, limit: int) -> tuple[bool, int]:
    global _script
    if _script is None:
        _script = client.register_script(_CHECK_AND_INCR)
    allowed, current = _script(keys=[key], args=[cost, limit, WINDOW_SECONDS + 10], client=client)
    return bool(allowed), int(current)


def consume(identity: str, bucket: str, limit: int, cost: int = 1) -> RateState:
    """Take `cost` units from identity's bucket in the current window (cost 0 only reads)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    reset = window + WINDOW_SECONDS
    key = f"perly:rl:{bucket}:{identity}:{window}"
    client = get_redis()
    try:
        if client is None:
            allowed, current = _local.check_and_incr(key, cost, limit, window)
        else:
            allowed, current = _redis_check_and_incr(client, key, cost, limit)
    except Exception as exc:  # redis down or timing out: fail open
        metrics["ratelimit_fail_open_total"] += 1
        logger.warning("rate limiter unavailable, allowing request: %s", exc.__class__.__name__)
        return RateState(bucket, limit, limit, reset, True)
    return RateState(bucket, limit, max(0, limit - current), reset, allowed)


def consume_and_read_cache(
    identity: str, bucket: str, limit: int, generation_key: str, entry_prefix: str
) -> tuple[RateState, str | None, bytes | None]:
    """`consume` for a response-cache candidate, in the same single round trip: also returns the
    key to store the response under (entry_prefix + the current generation) and the cached entry,
    if any. Redis is required (callers check); when it fails the limiter fails open, uncached."""
    global _read_script
    now = time.time()
    window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    reset = window + WINDOW_SECONDS
    key = f"perly:rl:{bucket}:{identity}:{window}"
    client = get_redis()
    try:
        if _read_script is None:
            _read_script = client.register_script(_CHECK_AND_INCR_THEN_READ)
        result = _read_script(
            keys=[key, generation_key], args=[1, limit, WINDOW_SECONDS + 10, entry_prefix], client=client
        )
    except Exception as exc:
        metrics["ratelimit_fail_open_total"] += 1
        logger.warning("rate limiter unavailable, allowing request: %s", exc.__class__.__name__)
        return RateState(bucket, limit, limit, reset, True), None, None
    allowed, current = bool(result[0]), int(result[1])
    state = RateState(bucket, limit, max(0, limit - current), reset, allowed)
    if not allowed:
        return state, None, None
    return state, entry_prefix + result[2].decode(), result[3] if len(result) > 3 else None


def consume_anonymous(request) -> RateState:
    """The per-address bucket for requests without a valid key (django-ratelimit)."""
    limit = settings.PERLY_RATE_LIMITS["anonymous"]
    reset = int(time.time() // WINDOW_SECONDS) * WINDOW_SECONDS + WINDOW_SECONDS
    try:
        usage = get_usage(
            request, group="perly.anonymous", key="ip", rate=f"{limit}/m", method=ALL, increment=True
        )
    except Exception as exc:
        metrics["ratelimit_fail_open_total"] += 1
        logger.warning("anonymous rate limiter unavailable: %s", exc.__class__.__name__)
        return RateState("anonymous", limit, limit, reset, True)
    if usage is None:
        return RateState("anonymous", limit, limit, reset, True)
    reset = int(time.time()) + int(usage["time_left"])
    return RateState("anonymous", limit, max(0, limit - usage["count"]), reset, not usage["should_limit"])
