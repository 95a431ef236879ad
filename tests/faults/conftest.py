"""Fault fixtures: TCP proxies in front of the shared PostgreSQL and Redis, a real gunicorn server
and Celery workers pointed at them, and helpers to talk to the server over HTTP.

Every test here uses `django_db(transaction=True)`: the server and the workers are other
processes and only see committed rows.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.conf import settings
from django.db import connection

from perly.apikeys import api_key_create
from perly.services import workspace_create
from tests.support.proxy import TcpProxy
from tests.support.worker import ROOT, Worker, wait_for, worker_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def via(url: str, port: int) -> str:
    """The same URL with its host:port replaced by 127.0.0.1:<port> (a proxy)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def database_url(port: int | None = None) -> str:
    db = settings.DATABASES["default"]
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@127.0.0.1:{port or db['PORT'] or 5432}"
        f"/{connection.settings_dict['NAME']}"
    )


class Server:
    """`gunicorn perly.wsgi` in a subprocess (sync workers with threads, as in production)."""

    def __init__(self, env: dict[str, str], workers: int = 1, threads: int = 8, shipped_config: bool = False):
        self.env = env
        self.workers = workers
        self.threads = threads
        # Only the repository's gunicorn.conf.py: its worker class, process and thread counts.
        self.shipped_config = shipped_config
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.session = requests.Session()
        self.log = tempfile.NamedTemporaryFile(prefix="perly-gunicorn-", suffix=".log")  # noqa: SIM115

    def start(self) -> Server:
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}"]
        if self.shipped_config:
            command += ["--config", str(ROOT / "gunicorn.conf.py"), "--log-level", "info"]
        else:
            command += ["perly.wsgi:application", "--workers", str(self.workers)]
            command += ["--threads", str(self.threads), "--timeout", "60", "--log-level", "warning"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stderr=self.log, start_new_session=True
        )
        wait_for(self._up, timeout=30, message="gunicorn to answer /healthz")
        return self

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.process.returncode}")
        try:
            return requests.get(self.url("/healthz"), timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def logs(self) -> str:
        """Everything the server logged so far (stderr: gunicorn and the app's console handler)."""
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method: str, path: str, key: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        kwargs.setdefault("timeout", 20)
        return self.session.request(method, self.url(path), headers=headers, **kwargs)

    def stop(self) -> None:
        self.session.close()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture
def pg_proxy():
    db = settings.DATABASES["default"]
    with TcpProxy(int(db["PORT"] or 5432)) as proxy:
        yield proxy


@pytest.fixture
def redis_proxy():
    with TcpProxy(urlsplit(settings.REDIS_URL).port or 6379) as proxy:
        yield proxy


def server_env(pg_port: int | None = None, redis_port: int | None = None, **extra: str) -> dict[str, str]:
    """The server's environment: the test database and Redis db, optionally through proxies."""
    redis_url = via(settings.REDIS_URL, redis_port) if redis_port else settings.REDIS_URL
    env = worker_env(
        DATABASE_URL=database_url(pg_port),
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        DEBUG="false",
        LOG_LEVEL="WARNING",
        PERLY_WEBHOOK_ALLOW_PRIVATE_URLS="true",
    )
    env.update(extra)
    return env


@pytest.fixture
def start_server():
    started: list[Server] = []

    def start(env: dict[str, str], **options) -> Server:
        server = Server(env, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_worker(broker_mode):
    """start_worker(beat=False, **env) -> a running Celery worker; every one is stopped at the end."""
    from perly.redis_client import get_redis

    get_redis().flushdb()  # no stale tasks from earlier tests
    started: list[Worker] = []

    def start(beat: bool = False, **extra_env: str) -> Worker:
        # Receivers and fakes live on 127.0.0.1, which the SSRF policy refuses by default.
        extra_env.setdefault("PERLY_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
        worker = Worker(beat=beat, extra_env=extra_env).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def tenant(transactional_db):
    """A workspace and a full-scope key's secret (committed, so other processes see them)."""
    workspace = workspace_create(slug="faults", name="Faults")
    _, secret = api_key_create(workspace=workspace, scopes="read,write")
    return workspace, secret
