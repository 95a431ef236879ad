"""Secure by default: a clean deploy check, security headers, an admin that resists password
guessing, secrets that never reach the logs, and failed authentication throttled per address."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from perly.apikeys import api_key_create
from tests.platform.helpers import assert_error
from tests.reliability.conftest import (
    HUBSPOT_TOKEN,
    SALESFORCE_CLIENT_ID,
    SALESFORCE_CLIENT_SECRET,
    STRIPE_KEY,
    WEBHOOK_URL,
)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def production_env(**extra: str) -> dict[str, str]:
    """What an operator sets in production (README): no DEBUG, a real secret, TLS redirect."""
    return {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "perly.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "api.perly.example",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "SECURE_SSL_REDIRECT": "true",
        **extra,
    }


def test_deploy_check_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_deploy_check_flags_debug_in_production():
    """The check above is not vacuous: DEBUG on is reported."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(DEBUG="true"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "security.W018" in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/nope", "/healthz", "/admin/login/"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path, secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


@override_settings(SECURE_SSL_REDIRECT=True)
def test_ssl_redirect_spares_the_load_balancer_probes(client):
    assert client.get("/v1/customers").status_code == 301
    assert client.get("/healthz").status_code == 200


# --- The admin against password guessing (django-axes) ----------------------------------------
@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("maya", "maya@perly.example", PASSWORD)


@pytest.fixture
def browser():
    """A browser posts the admin's form encoded, not JSON like the API clients."""
    return Client()


def admin_login(browser, password: str, address: str = "198.51.100.7"):
    return browser.post(
        "/admin/login/?next=/admin/", {"username": "maya", "password": password}, REMOTE_ADDR=address
    )


def test_admin_login_works(browser, staff):
    response = admin_login(browser, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200


def test_admin_locks_out_password_guessing(browser, staff):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = admin_login(browser, "guess")
        assert response.status_code == 200 and b"Please enter the correct username" in response.content
    assert admin_login(browser, "guess").status_code == 429
    # Locked out: even the right password is refused from this address...
    assert admin_login(browser, PASSWORD).status_code == 429
    assert browser.get("/admin/").status_code == 302
    # ...but the guesser cannot lock staff out everywhere: another address still logs in.
    assert admin_login(browser, PASSWORD, address="203.0.113.50").status_code == 302


def test_a_successful_login_resets_the_failure_count(browser, staff):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        admin_login(browser, "guess")
    assert admin_login(browser, PASSWORD).status_code == 302
    browser.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert admin_login(browser, "guess").status_code == 200
    assert admin_login(browser, PASSWORD).status_code == 302


# --- Failed API authentication, per address -----------------------------------------------------
@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 5})
def test_guessing_api_keys_is_throttled_per_address(anon_client, client):
    guesses = [f"pk_live_{secrets.token_urlsafe(32)}" for _ in range(6)]
    statuses = []
    for guess in guesses:
        response = anon_client.get(
            "/v1/customers", HTTP_AUTHORIZATION=f"Bearer {guess}", REMOTE_ADDR="192.0.2.9"
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
    assert response["X-RateLimit-Resource"] == "anonymous"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Other addresses are unaffected; from the throttled address even a real key waits out the
    # window (a hit must not answer differently from a miss while guessing is refused).
    other = anon_client.get(
        "/v1/customers", HTTP_AUTHORIZATION=f"Bearer {guesses[0]}", REMOTE_ADDR="192.0.2.10"
    )
    assert other.status_code == 401
    assert client.get("/v1/customers", REMOTE_ADDR="192.0.2.9").status_code == 429
    assert client.get("/v1/customers", REMOTE_ADDR="192.0.2.10").status_code == 200


# --- Secrets never reach the logs --------------------------------------------------------------
def test_secrets_never_reach_the_logs(
    workspace,
    make_client,
    anon_client,
    caplog,
    offline_dns,
    fake_providers,
    django_capture_on_commit_callbacks,
):
    caplog.set_level(logging.DEBUG)
    api = make_client(workspace)
    _, second_key = api_key_create(workspace=workspace, name="second")
    wrong_key = f"pk_live_{secrets.token_urlsafe(32).replace('-', 'a').replace('_', 'b')}"
    wrong_stripe = "sk_test_" + "Z" * 24
    leaks = {
        api.secret,
        second_key,
        wrong_key,
        wrong_stripe,
        STRIPE_KEY,
        HUBSPOT_TOKEN,
        SALESFORCE_CLIENT_SECRET,
    }

    assert api.get("/v1/customers").status_code == 200
    assert anon_client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {wrong_key}").status_code == 401
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/v1/webhooks", {"url": WEBHOOK_URL, "events": ["*"]}, format="json").json()
        rotated = api.post(f"/v1/webhooks/{created['id']}/rotate_secret").json()
    leaks |= {created["secret"], rotated["secret"]}
    connections = [
        ("stripe", {"api_key": wrong_stripe}, 400),
        ("stripe", {"api_key": STRIPE_KEY}, 201),
        ("hubspot", {"access_token": HUBSPOT_TOKEN}, 201),
        (
            "salesforce",
            {"client_id": SALESFORCE_CLIENT_ID, "client_secret": SALESFORCE_CLIENT_SECRET},
            201,
        ),
    ]
    for provider, credentials, status in connections:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/v1/integrations", {"provider": provider, "credentials": credentials}, format="json"
            )
        assert response.status_code == status, response.content
    leaks |= fake_providers["salesforce"].tokens
    # What a careless line of code would log: headers, credentials, an exception carrying a key.
    careless = logging.getLogger("perly.careless")
    careless.info(
        "headers %s", {"Authorization": f"Bearer {api.secret}", "webhook-secret": created["secret"]}
    )
    careless.warning("connecting with %r", {"api_key": STRIPE_KEY, "access_token": HUBSPOT_TOKEN})
    careless.debug(
        "token request client_id=%s&client_secret=%s", SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET
    )
    try:
        raise RuntimeError(f"provider refused {STRIPE_KEY} and {HUBSPOT_TOKEN}")
    except RuntimeError:
        careless.exception("sync failed")

    text = caplog.text + "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert len(caplog.records) >= 10, "the flows above should have logged"
    # The masks show: what was logged was a secret's kind, never the secret.
    assert "pk_live_***" in text and "whsec_***" in text and "sk_test_***" in text and "pat-na1-***" in text
    found = sorted(secret[:12] for secret in leaks if secret in text)
    assert not found, f"secrets in the logs: {found}"
