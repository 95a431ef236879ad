"""Helpers the benchmark scripts share: scratch databases, ports and per-process CPU time.

Import as `benchmarks.support` with the repository root on sys.path (each script puts it there).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def admin_sql(server_url: str, statement: str) -> None:
    """Run `statement` on the server's `postgres` database (CREATE / DROP DATABASE)."""
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def ensure_database(database_url: str) -> None:
    """Create the database named by `database_url` if it does not exist."""
    import psycopg

    base, name = database_url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per group between two {group: {pid: seconds}} snapshots (a process new since
    `before` counts from 0)."""
    return {
        name: sum(seconds - before.get(name, {}).get(pid, 0.0) for pid, seconds in pids.items())
        for name, pids in after.items()
    }
