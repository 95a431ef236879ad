"""Fixed one-minute windows per API key and bucket (`read`, `write`, `events`), and per client
address for failed authentication (`anonymous`).

Each check costs one Redis round trip: a Lua script that checks and increments atomically, so the
limiter is exact under concurrency (allowed <= limit) and a batch larger than what is left is
refused whole without consuming anything. The anonymous bucket is read before every key lookup
(cost 0, a GET) and charged only when authentication fails. If Redis is down the limiter fails
open: serving traffic matters more than counting it.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings

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
    logger.warning("%s rate limiter unavailable, allowing request: %s", bucket, exc.__class__.__name__)
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


def client_address(request) -> str:
    """The anonymous bucket's identity: the client's address, an IPv6 one as its /64 (one host
    usually holds a whole /64, so per-address counting would not throttle it). Behind
    PERLY_TRUSTED_PROXY_COUNT proxies it is the entry the outermost of them appended to
    X-Forwarded-For (entries left of it are the client's to invent); without one, the peer."""
    raw = request.META.get("REMOTE_ADDR") or ""
    proxies = settings.PERLY_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            raw = forwarded[-proxies]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def anonymous_state(request, *, charge: bool) -> RateState:
    """The per-address bucket for failed authentication. `charge=False` only looks: it answers
    allowed=False once the address has used up its limit, so the caller refuses before any key
    lookup; `charge=True` counts one failure."""
    limit = settings.PERLY_RATE_LIMITS["anonymous"]
    if charge:
        return consume(client_address(request), "anonymous", limit)
    state = consume(client_address(request), "anonymous", limit, cost=0)
    if state.allowed and state.remaining > 0:
        return state
    return RateState(state.bucket, state.limit, 0, state.reset, False)


def consume_open_path(request) -> RateState:
    """Requests to the paths that need no key (the OpenAPI spec), per address. A counter apart
    from failed authentication's: fetching the spec must not lock a client out of its own key."""
    return consume(f"open:{client_address(request)}", "anonymous", settings.PERLY_RATE_LIMITS["anonymous"])
