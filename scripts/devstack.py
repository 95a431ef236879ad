"""`make run` and `make test`: the product on PostgreSQL and Redis, started here when not given.

    devstack.py run [--port 8000]   embedded servers (unless DATABASE_URL / REDIS_URL are set),
                                    migrate, seed the demo workspace, then the web server and a
                                    Celery worker with beat in the foreground until Ctrl-C/SIGTERM
    devstack.py test [pytest args]  the suite against TEST_DATABASE_URL / TEST_REDIS_URL, or
                                    against embedded servers for whichever is not given

Data lives in `.perly/` (git-ignored): `.perly/postgres`, `.perly/redis`, and `.perly/test/` for
the suite's servers. `rm -rf .perly` resets it. While `make run` runs, `source .perly/env` gives a
shell the same DATABASE_URL and REDIS_URL (for `manage.py shell` and friends).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402

DATA = ROOT / ".perly"
PYTHON = sys.executable
STOP_TIMEOUT = 20.0


def log(message: str) -> None:
    print(f"[perly] {message}", flush=True)


class Stack:
    """The servers this process started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.servers: list = []
        self.children: list[subprocess.Popen] = []

    def start_server(self, server, name: str) -> str:
        started = time.monotonic()
        url = server.start()
        self.servers.append(server)
        log(f"{name} started at {url} in {time.monotonic() - started:.1f}s (data in {server.data_dir})")
        return url

    def spawn(self, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        # A session of its own: Ctrl-C reaches only this supervisor, which stops the children in
        # order; killpg then reaches their own children (runserver's reloader, Celery's pool).
        child = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"pid {child.pid} ignored SIGTERM; killing it")
            # The group may outlive its leader (a pool child still finishing): kill what is left.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        self.children.clear()
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                log(f"could not stop {server.__class__.__name__}: {exc}")
        self.servers.clear()


def _raise_keyboard_interrupt(signum, frame):
    # The first signal starts the shutdown; later ones (a second Ctrl-C, or the SIGTERM that
    # make passes on to its children when it is itself terminated) must not cut it short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _secret_key() -> str:
    """One random development key per checkout, kept so encrypted credentials survive a restart."""
    path = DATA / "secret_key"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def run(port: int) -> int:
    stack = Stack()
    # Explicitly: a shell without job control starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("SECRET_KEY", _secret_key())
    env.setdefault("DJANGO_SETTINGS_MODULE", "perly.settings")
    try:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.start_server(EmbeddedPostgres(DATA / "postgres"), "PostgreSQL")
        else:
            log("using DATABASE_URL from the environment")
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.start_server(EmbeddedRedis(DATA / "redis"), "Redis")
        else:
            log("using REDIS_URL from the environment")
        (DATA / "env").write_text(
            f"export DATABASE_URL={env['DATABASE_URL']}\nexport REDIS_URL={env['REDIS_URL']}\n"
            f"export DEBUG={env['DEBUG']}\nexport SECRET_KEY={env['SECRET_KEY']}\n"
        )
        manage = [PYTHON, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True)
        web = stack.spawn([*manage, "runserver", f"127.0.0.1:{port}"], env)
        worker = stack.spawn(
            [PYTHON, "-m", "celery", "-A", "perly", "worker", "-B", "-l", "info", "--concurrency", "2",
             "--schedule", str(DATA / "celerybeat-schedule")],
            env,
        )  # fmt: skip
        log(
            f"serving http://127.0.0.1:{port}/ (API docs at /docs/, admin at /admin/); Ctrl-C stops everything"
        )
        while True:
            for child, name in ((web, "web server"), (worker, "Celery worker")):
                if child.poll() is not None:
                    log(f"the {name} exited with {child.returncode}; stopping")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        log(f"{' '.join(exc.cmd[1:3])} failed with exit code {exc.returncode}")
        return exc.returncode
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in _raise_keyboard_interrupt
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            (DATA / "env").unlink()
        log("stopped")


def _unreachable(kind: str, url: str) -> str | None:
    """Why `url` cannot be used, or None when it answers."""
    try:
        if kind == "postgres":
            import psycopg

            dsn = url.rsplit("/", 1)[0] + "/postgres"
            psycopg.connect(dsn, connect_timeout=3).close()
        else:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"{exc.__class__.__name__}: {exc}".strip()
    return None


def test(pytest_args: list[str]) -> int:
    given = {
        "postgres": os.environ.get("TEST_DATABASE_URL", ""),
        "redis": os.environ.get("TEST_REDIS_URL", ""),
    }
    problems = [
        f"{name} {url}: {reason}"
        for name, url in (("TEST_DATABASE_URL", given["postgres"]), ("TEST_REDIS_URL", given["redis"]))
        if url and (reason := _unreachable("postgres" if name == "TEST_DATABASE_URL" else "redis", url))
    ]
    if problems:
        print(
            "make test: a server you named is not reachable (nothing falls back silently):", file=sys.stderr
        )
        for problem in problems:
            print("  - " + problem, file=sys.stderr)
        print("Start it, or unset the variable to use an embedded server.", file=sys.stderr)
        return 2
    stack = Stack()
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    env = dict(os.environ)
    try:
        env["DATABASE_URL"] = given["postgres"] or stack.start_server(
            EmbeddedPostgres(DATA / "test" / "postgres", durable=False),
            "PostgreSQL (embedded, for the tests)",
        )
        env["REDIS_URL"] = given["redis"] or stack.start_server(
            EmbeddedRedis(DATA / "test" / "redis", persist=False), "Redis (embedded, for the tests)"
        )
        return subprocess.run(
            [PYTHON, "-m", "pytest", *pytest_args], cwd=ROOT, env=env, check=False
        ).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    commands.add_parser("test")
    args, rest = parser.parse_known_args()
    if args.command == "run":
        return run(args.port)
    return test([arg for arg in rest if arg != "--"])


if __name__ == "__main__":
    sys.exit(main())
