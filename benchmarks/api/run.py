"""Requests/s of the customers API against a bare Django JSON view, on one gunicorn, same run.

    .venv/bin/python benchmarks/api/run.py [--duration 10] [--connections 4] [--no-response-cache]

Starts gunicorn (2 sync workers) on 127.0.0.1 with PostgreSQL (BENCH_DATABASE_URL) and Redis
(BENCH_REDIS_URL), seeds a workspace with 1,000 customers, and measures with wrk (Debian's
`wrk` package) when installed, else with a threaded Python keep-alive client, in interleaved
rounds of short slices (baseline, single, list); each path's ratio is the median over rounds of
its rate over the baseline rate of the same round. Results also go to benchmarks/results/api.json.
The retrieve is measured with the response cache (perly.response_cache) on, as served: the same
customer again and again is a cache hit; `--no-response-cache` measures the database path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.support import ensure_database, free_port  # noqa: E402

PYTHON = sys.executable
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/perly_bench_api")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
CUSTOMERS = 1000
TARGETS = {"single": 0.50, "list100": 0.15}


def server_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "perly.settings",
        "DEBUG": "false",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdef",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1",
        "PERLY_BENCHMARK_BASELINE": "1",
        "LOG_LEVEL": "WARNING",
    }


def seed() -> None:
    """Runs in a child process with server_env(): one workspace, 1,000 customers, one key."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from customers.models import Customer
    from perly.apikeys import api_key_create
    from perly.models import Workspace
    from perly.services import workspace_create

    workspace = Workspace.objects.filter(slug="bench-api").first() or workspace_create(slug="bench-api")
    missing = CUSTOMERS - Customer.objects.filter(workspace=workspace).count()
    plans = ["starter", "growth", "business", "enterprise"]
    Customer.objects.bulk_create(
        Customer(
            workspace=workspace,
            name=f"Bench Customer {i}",
            email=f"ops{i}@bench{i}.example.com",
            domain=f"bench{i}.example.com",
            external_id=f"bench_{time.time_ns()}_{i}",
            plan=plans[i % 4],
            owner="owner@perly.io",
            lifecycle_stage="active",
            metadata={"region": "emea", "seats": str(i)},
        )
        for i in range(max(0, missing))
    )
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics, as autovacuum keeps them in production
        cursor.execute("ANALYZE customers_customer")
    # Limits far above what the run can send: the benchmark measures the limiter, not 429s.
    _, secret = api_key_create(workspace=workspace, name="benchmark", scopes="read", rate_limit_read=10**9)
    customer_id = (
        Customer.objects.filter(workspace=workspace).order_by("-id").values_list("id", flat=True)[500]
    )
    print(json.dumps({"key": secret, "customer_id": customer_id}))


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer {url} within {timeout}s")


def run_wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "rps": rps,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors and errors.group(0),
    }


def run_python(url: str, headers: dict[str, str], duration: int, connections: int) -> dict:
    """Fallback load generator: one thread per connection, HTTP/1.1 on loopback."""
    import http.client

    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    counts = [0] * connections
    bad = [0] * connections
    stop = time.monotonic() + duration

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.monotonic() < stop:
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                continue
            counts[index] += 1
            bad[index] += response.status >= 300

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"rps": sum(counts) / (time.monotonic() - started), "non_2xx": sum(bad), "socket_errors": None}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "seed":
        seed()
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=3, help="seconds per slice")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the three paths")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (>1 uses the gthread worker)"
    )
    parser.add_argument(
        "--no-response-cache",
        action="store_true",
        help="serve every retrieve from PostgreSQL (PERLY_RETRIEVE_CACHE_SECONDS=0): the cache-miss path",
    )
    args = parser.parse_args()

    env = server_env()
    if args.no_response_cache:
        env["PERLY_RETRIEVE_CACHE_SECONDS"] = "0"
    ensure_database(DATABASE_URL)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), "seed"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if seeded.returncode:
        sys.stderr.write(seeded.stderr)
        return 1
    info = json.loads(seeded.stdout.strip().splitlines()[-1])

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "perly.wsgi:application",
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    tool = "wrk" if shutil.which("wrk") else "python"
    measure = run_wrk if tool == "wrk" else run_python
    auth = {"Authorization": f"Bearer {info['key']}"}
    paths = {
        "baseline": (f"{base}/__benchmark__/bare", {}),
        "single": (f"{base}/v1/customers/{info['customer_id']}", auth),
        "list100": (f"{base}/v1/customers?limit=100", auth),
    }
    results: dict[str, list[dict]] = {name: [] for name in paths}
    try:
        wait_until_up(f"{base}/healthz")
        for url, headers in paths.values():  # warm-up: connections, caches, imports
            measure(url, headers, 2, args.connections)
        # Short interleaved slices: on a shared machine the load drifts, so each path is compared
        # with the baseline measured next to it, and the median of those ratios is reported.
        for _ in range(args.rounds):
            for name, (url, headers) in paths.items():
                result = measure(url, headers, args.duration, args.connections)
                if result["non_2xx"]:
                    raise RuntimeError(f"{name}: {result['non_2xx']} non-2xx responses")
                results[name].append(result)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    rps = {name: [r["rps"] for r in runs] for name, runs in results.items()}
    ratios = {
        name: median([value / floor for value, floor in zip(rps[name], rps["baseline"], strict=True)])
        for name in TARGETS
    }
    summary = {
        "tool": tool,
        "connections": args.connections,
        "workers": args.workers,
        "threads": args.threads,
        "slice_s": args.duration,
        "rounds": args.rounds,
        "customers": CUSTOMERS,
        "response_cache": not args.no_response_cache,
        "rps_median": {name: round(median(values)) for name, values in rps.items()},
        "rps_runs": {name: [round(v) for v in values] for name, values in rps.items()},
        "ratios_median": {name: round(value, 3) for name, value in ratios.items()},
        "targets": TARGETS,
    }
    kind = "sync" if args.threads == 1 else f"gthread x{args.threads}"
    print(
        f"load generator: {tool}, {args.connections} connections, gunicorn {args.workers} {kind} workers, "
        f"{args.rounds} rounds of {args.duration}s slices, "
        f"response cache {'off' if args.no_response_cache else 'on'}"
    )
    print("| path | req/s (median) | share of bare view (median of per-round ratios) | target |")
    print("|---|---|---|---|")
    print(f"| bare Django JSON view | {median(rps['baseline']):,.0f} | 100% | |")
    labels = {"single": "GET /v1/customers/:id", "list100": "GET /v1/customers?limit=100"}
    for name, label in labels.items():
        mark = "met" if ratios[name] >= TARGETS[name] else "MISSED"
        print(
            f"| {label} | {median(rps[name]):,.0f} | {ratios[name]:.0%} | >= {TARGETS[name]:.0%} ({mark}) |"
        )
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "api.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
