"""Stop `make test` at once, with instructions, when PostgreSQL or Redis is unreachable."""

from __future__ import annotations

import os
import sys

import psycopg
import redis


def main() -> int:
    database_url = os.environ["DATABASE_URL"]
    redis_url = os.environ["REDIS_URL"]
    problems = []
    try:
        dsn = database_url.rsplit("/", 1)[0] + "/postgres"
        psycopg.connect(dsn, connect_timeout=3).close()
    except Exception as exc:
        problems.append(
            f"PostgreSQL is not reachable at {database_url} ({exc.__class__.__name__}: {exc}).\n"
            "  Start it (e.g. `pg_ctlcluster 15 main start`) or set TEST_DATABASE_URL=postgres://user@host:port/db."
        )
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        problems.append(
            f"Redis is not reachable at {redis_url} ({exc.__class__.__name__}).\n"
            "  Start it (e.g. `redis-server --daemonize yes`) or set TEST_REDIS_URL=redis://host:port/db."
        )
    if problems:
        print("The test suite needs PostgreSQL and Redis; it never falls back to SQLite.", file=sys.stderr)
        for problem in problems:
            print("- " + problem, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
