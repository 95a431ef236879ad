"""CI: the README's first command as a newcomer meets it, on this checkout.

Runs `make run` with DATABASE_URL and REDIS_URL unset (so the embedded servers start and the venv
is built from requirements.txt alone, before `make test` adds the dev tools), then checks, each
with a deadline: /healthz answers; the printed demo key lists customers; a webhook endpoint on a
local receiver that answers 500 once and then 200 gets the event delivered again by the worker;
after SIGTERM, no process started from this checkout is left. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / ".perly" / "ci-make-run.log"
KEY_PATTERN = re.compile(r"^(pk_(?:live|test)_[A-Za-z0-9]+)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise SystemExit(f"ci_newcomer: timed out after {timeout:.0f}s waiting for {what}\n{tail_log()}")


def tail_log() -> str:
    return LOG.read_text(errors="replace")[-4000:] if LOG.exists() else "(no log)"


def request(method: str, url: str, key: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 (127.0.0.1 only)
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Receiver(BaseHTTPRequestHandler):
    """Answers the first delivery with 500 and every later one with 200."""

    deliveries: list[tuple[int, dict]] = []

    def do_POST(self):  # noqa: N802
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        status = 500 if not Receiver.deliveries else 200
        Receiver.deliveries.append((status, payload))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def processes_of_this_checkout() -> list[str]:
    """Live processes whose executable or command line lives in this checkout (venv python,
    the wheels' postgres and redis-server), this script's own process excluded."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                (
                    line.split()[1]
                    for line in (entry / "status").read_text().splitlines()
                    if line.startswith("State:")
                ),
                "",
            )
        except OSError:
            continue
        if state == "Z":
            continue
        if exe.startswith(str(ROOT)) or str(ROOT / ".venv") in cmdline:
            found.append(f"{entry.name}: {cmdline.strip()[:160]}")
    return found


def main() -> int:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    # The receiver is on 127.0.0.1, which webhook URLs may target only in development.
    env.update(PORT=str(port), PERLY_WEBHOOK_ALLOW_PRIVATE_URLS="true")
    LOG.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    with LOG.open("w") as log:
        make = subprocess.Popen(
            ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy():
            if make.poll() is not None:
                raise SystemExit(f"ci_newcomer: make run exited with {make.returncode}\n{tail_log()}")
            try:
                return request("GET", f"{base}/healthz")[0] == 200
            except OSError:
                return False

        wait_for(healthy, 600, "/healthz (make run installs requirements.txt, starts servers, migrates)")
        print(f"ci_newcomer: make run served /healthz after {time.monotonic() - started:.0f}s")
        key = wait_for(lambda: KEY_PATTERN.findall(LOG.read_text()), 30, "the printed API key")[-1]
        status, customers = request("GET", f"{base}/v1/customers?limit=5", key)
        assert status == 200 and customers["data"], (status, customers)
        print(f"ci_newcomer: the printed key lists {len(customers['data'])} demo customers")

        receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        status, endpoint = request(
            "POST", f"{base}/v1/webhooks", key, {"url": hook_url, "events": ["customer.updated"]}
        )
        assert status == 201, (status, endpoint)
        customer = customers["data"][0]
        status, _ = request("PATCH", f"{base}/v1/customers/{customer['id']}", key, {"plan": "enterprise"})
        assert status == 200, status
        wait_for(lambda: len(Receiver.deliveries) >= 2, 120, "the worker to retry the failed delivery")
        (first, payload), (second, again) = Receiver.deliveries[:2]
        assert (first, second) == (500, 200) and payload == again, Receiver.deliveries[:2]
        print(
            f"ci_newcomer: {payload.get('type')} failed once (500), then the worker delivered it on the retry"
        )
        receiver.shutdown()
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
        try:
            make.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            raise SystemExit(
                f"ci_newcomer: make run did not stop within 60s of SIGTERM\n{tail_log()}"
            ) from None
    deadline = time.monotonic() + 30
    while left := processes_of_this_checkout():
        if time.monotonic() > deadline:
            raise SystemExit("ci_newcomer: processes left running 30s after SIGTERM:\n" + "\n".join(left))
        time.sleep(0.2)
    print("ci_newcomer: make run stopped on SIGTERM and left no process behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
