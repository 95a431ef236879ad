"""Where a request's time goes, in-process: cProfile around the WSGI app for one path.

    .venv/bin/python benchmarks/api/profile_paths.py [single|list100|baseline] [--n 2000]

Uses the same environment as run.py (PostgreSQL, Redis, DEBUG off) and the data it seeded
(run run.py once first). Prints per-request microseconds and the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import server_env  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", choices=["single", "list100", "baseline"], default="single", nargs="?")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    os.environ.update(server_env())
    seeded = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "run.py"), "seed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(seeded.stdout.strip().splitlines()[-1])

    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    path, query = {
        "single": (f"/v1/customers/{info['customer_id']}", ""),
        "list100": ("/v1/customers", "limit=100"),
        "baseline": ("/__benchmark__/bare", ""),
    }[args.path]
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {info['key']}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }

    def call() -> None:
        status = []
        body = app(dict(environ), lambda s, h, exc_info=None: status.append(s))
        b"".join(body)
        if hasattr(body, "close"):
            body.close()
        assert status[0].startswith("200"), status

    for _ in range(200):
        call()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(args.n):
        call()
    per_request = (time.perf_counter() - started) / args.n * 1e6
    cpu_per_request = (time.process_time() - cpu_started) / args.n * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.n):
        call()
    profiler.disable()
    print(
        f"{args.path}: {per_request:.0f} us wall, {cpu_per_request:.0f} us CPU in this process per request "
        f"(no profiler), {args.n} requests"
    )
    stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative"))
    stats.print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
