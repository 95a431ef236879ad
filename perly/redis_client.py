"""One shared Redis connection pool for the hot paths that bypass Django's cache API."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5, health_check_interval=30
    )


def reset_redis() -> None:
    get_redis.cache_clear()


_scripts: dict[str, object] = {}


def run_script(client: redis.Redis, source: str, keys: list[str], args: list):
    """EVALSHA of a Lua `source`, registered once per process (redis-py reloads it if Redis
    restarted and lost it)."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = client.register_script(source)
    return script(keys=keys, args=args, client=client)
