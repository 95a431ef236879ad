"""A short-lived Redis cache of single-object GET responses, read in the rate limiter's round trip.

A retrieve that hits the cache costs one Redis round trip in all (the one the rate limiter makes
anyway) and no database query. Correctness rests on a per-workspace generation number:

- an entry is stored under the generation read *before* the view queried the database, so a
  response built from a row that a concurrent write is replacing lands under a generation that
  the write's bump has already retired, and is never served;
- every write that can change a cached object bumps its workspace's generation after commit
  (`invalidate_workspace`), so the next read misses and sees the committed row;
- entries expire after PERLY_RETRIEVE_CACHE_SECONDS anyway, which bounds the damage of a bump
  lost to a Redis outage.

Only requests whose answer depends on nothing but (workspace, path) are candidates: GET, no query
string, an Accept the JSON renderer serves, a key holding the read scope, and a path registered
by the resource (`register`). Without Redis (the embedded default) nothing is cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.http import HttpResponse

from perly import ratelimit
from perly.ids import is_valid_id
from perly.redis_client import get_redis, run_script

logger = logging.getLogger("perly.response_cache")

_JSON_ACCEPTS = frozenset({"", "*/*", "application/json", "application/*"})


@dataclass(frozen=True)
class _Route:
    prefix: str  # "/v1/customers/"
    id_prefix: str  # "cus"
    scope: str  # "customers:read"


_routes: list[_Route] = []


def register(prefix: str, *, id_prefix: str, scope: str) -> None:
    """Cache GET `<prefix><id>` for keys holding `scope`. The resource promises that the response
    is a function of the object's row only, and that each of its writers calls
    `invalidate_workspace` after commit."""
    route = _Route(prefix, id_prefix, scope)
    if route not in _routes:
        _routes.append(route)


def enabled() -> bool:
    return settings.PERLY_RETRIEVE_CACHE_SECONDS > 0


def candidate(request) -> bool:
    """Whether this request's response may be served from, and stored in, the cache."""
    if request.method != "GET" or request.META.get("QUERY_STRING") or not _routes:
        return False
    if request.META.get("HTTP_ACCEPT", "").strip() not in _JSON_ACCEPTS:
        return False
    path = request.path
    for route in _routes:
        if path.startswith(route.prefix) and is_valid_id(path[len(route.prefix) :], route.id_prefix):
            return request.principal.has_scope(route.scope) and enabled()
    return False


def generation_key(workspace_id: str) -> str:
    return f"perly:rc:gen:{workspace_id}"


def entry_prefix(workspace_id: str, path: str) -> str:
    """The entry's key without its generation."""
    return f"perly:rc:{workspace_id}:{path}:"


def encode(response) -> bytes:
    """Headers set inside the gateway (content type, Allow, Vary, X-Frame-Options) and the body;
    per-request headers (Request-Id, rate limits) are added to each response as it is served."""
    return orjson.dumps(list(response.items())) + b"\n" + bytes(response.content)


def decode(entry: bytes) -> HttpResponse:
    headers, _, body = entry.partition(b"\n")
    response = HttpResponse(body)
    for name, value in orjson.loads(headers):
        response[name] = value
    return response


def store(key: str, response) -> None:
    """Keep a successful retrieve under `key`: the generation read before the view ran."""
    if response.status_code != 200 or getattr(response, "streaming", False):
        return
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    try:
        get_redis().set(key, encode(response), ex=settings.PERLY_RETRIEVE_CACHE_SECONDS)
    except Exception as exc:  # a cache that cannot store costs a miss, nothing more
        logger.warning("response cache: could not store: %s", exc.__class__.__name__)


# A generation that no earlier key can have held: the current time in microseconds (bumps add
# one at a time, so they stay far below the next fresh value).
_FRESH_GENERATION = """
local function fresh_generation()
  local now = redis.call('TIME')
  return now[1] .. string.format('%06d', now[2])
end
"""

# The rate limiter's script continues with this when the request is allowed (ratelimit's
# `consume_then`): KEYS[2] is the workspace's generation, ARGV[4] the entry's key prefix.
_READ = (
    _FRESH_GENERATION
    + """
local generation = redis.call('GET', KEYS[2])
if not generation then
  redis.call('SET', KEYS[2], fresh_generation(), 'NX')
  generation = redis.call('GET', KEYS[2])
end
return {1, current, generation, redis.call('GET', ARGV[4] .. generation)}
"""
)

_BUMP = (
    _FRESH_GENERATION
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
redis.call('SET', KEYS[1], fresh_generation())
return 0
"""
)


def consume_and_read(request, bucket: str) -> tuple[ratelimit.RateState, str | None, bytes | None]:
    """The request's rate limit and, when it is allowed, its cached response, in one round trip.
    Returns the limiter's state, the key to store a fresh response under (the generation read
    now, before the view queries) and the cached entry, if any."""
    principal = request.principal
    workspace_id = principal.workspace_id
    prefix = entry_prefix(workspace_id, request.path)
    state, found = ratelimit.consume_then(
        principal.key_id,
        bucket,
        principal.limit_for(bucket),
        _READ,
        [generation_key(workspace_id)],
        [prefix],
    )
    if found is None:
        return state, None, None
    generation, *entry = found
    return state, prefix + generation.decode(), entry[0] if entry else None


def invalidate_workspace(workspace_id: str) -> None:
    """Retire every cached response of the workspace. Call after the write has committed."""
    try:
        run_script(get_redis(), _BUMP, [generation_key(workspace_id)], [])
    except Exception as exc:
        logger.warning(
            "response cache: could not invalidate workspace %s (%s); cached reads may lag up to %ss",
            workspace_id,
            exc.__class__.__name__,
            settings.PERLY_RETRIEVE_CACHE_SECONDS,
        )
