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
import time
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage

from perly.redis_client import get_redis, run_script

logger = logging.getLogger("perly.ratelimit")
WINDOW_SECONDS = 60

# Check and take `cost` (ARGV[1]) from KEYS[1] against the limit ARGV[2]; ARGV[3] is the key's
# expiry. Refused: {0, current}. The allowed branch is the caller's tail (`consume_then`).
_CHECK = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if current + cost > tonumber(ARGV[2]) then return {0, current} end
if cost > 0 then
  current = redis.call('INCRBY', KEYS[1], cost)
  if current == cost then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
end
"""
_CHECK_AND_INCR = _CHECK + "return {1, current}\n"

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


def _window(identity: str, bucket: str) -> tuple[str, int, int]:
    """The counter key, start and end of the current window."""
    window = int(time.time() // WINDOW_SECONDS) * WINDOW_SECONDS
    return f"perly:rl:{bucket}:{identity}:{window}", window, window + WINDOW_SECONDS


def _fail_open(bucket: str, limit: int, reset: int, exc: Exception) -> RateState:
    """Redis down or timing out: serving traffic matters more than counting it."""
    metrics["ratelimit_fail_open_total"] += 1
    logger.warning("rate limiter unavailable, allowing request: %s", exc.__class__.__name__)
    return RateState(bucket, limit, limit, reset, True)


def consume(identity: str, bucket: str, limit: int, cost: int = 1) -> RateState:
    """Take `cost` units from identity's bucket in the current window (cost 0 only reads)."""
    key, _, reset = _window(identity, bucket)
    try:
        allowed, current = run_script(get_redis(), _CHECK_AND_INCR, [key], [cost, limit, WINDOW_SECONDS + 10])
    except Exception as exc:
        return _fail_open(bucket, limit, reset, exc)
    return RateState(bucket, limit, max(0, limit - current), reset, bool(allowed))


def consume_then(
    identity: str, bucket: str, limit: int, tail: str, keys: list[str], args: list
) -> tuple[RateState, list | None]:
    """`consume` of one unit, and when it is allowed, the Lua `tail` in the same script: one round
    trip for the limiter and whatever the caller reads next (perly.response_cache). The tail sees
    `current`, its own keys from KEYS[2] and its own arguments from ARGV[4], and must return
    {1, current, ...}; the `...` is returned. Refused, or Redis failing (the limiter fails open):
    None. Needs Redis."""
    key, _, reset = _window(identity, bucket)
    try:
        result = run_script(get_redis(), _CHECK + tail, [key, *keys], [1, limit, WINDOW_SECONDS + 10, *args])
    except Exception as exc:
        return _fail_open(bucket, limit, reset, exc), None
    allowed, current = bool(result[0]), int(result[1])
    state = RateState(bucket, limit, max(0, limit - current), reset, allowed)
    return state, (list(result[2:]) if allowed else None)


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
