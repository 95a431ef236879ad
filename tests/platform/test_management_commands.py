"""Operators script against these commands' outputs: keep them stable."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from perly.models import ApiKey, Workspace


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().rstrip("\n").split("\n")


def _client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.django_db
def test_create_workspace_prints_its_id_last():
    lines = run("create_workspace", "initech", "--name", "Initech Inc")
    workspace = Workspace.objects.get(slug="initech")
    assert lines == ["Created workspace initech (live).", workspace.id]
    assert workspace.name == "Initech Inc"
    assert workspace.is_test is False


@pytest.mark.django_db
def test_create_test_workspace():
    lines = run("create_workspace", "sandbox", "--test")
    assert lines[0] == "Created workspace sandbox (test)."
    assert Workspace.objects.get(slug="sandbox").is_test


@pytest.mark.django_db
def test_create_workspace_twice_is_an_error():
    run("create_workspace", "initech")
    with pytest.raises(CommandError, match="Workspace 'initech' already exists."):
        run("create_workspace", "initech")


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["Has Spaces", "UPPER", "semi;colon"])
def test_create_workspace_rejects_bad_slugs(slug):
    with pytest.raises(CommandError, match="Invalid slug"):
        run("create_workspace", slug)


def test_create_api_key_prints_a_working_key_alone_on_the_last_line(workspace):
    lines = run("create_api_key", "acme", "--name", "ci")
    secret = lines[-1]
    assert secret.startswith("pk_live_") and " " not in secret
    key = ApiKey.objects.get(name="ci")
    assert lines[0] == (
        f"Created API key {key.id} for workspace acme with scopes {','.join(sorted(key.scopes))}."
    )
    assert _client_for(secret).get("/v1/customers").status_code == 200


def test_create_api_key_for_a_test_workspace_reads_pk_test(db):
    run("create_workspace", "sandbox", "--test")
    assert run("create_api_key", "sandbox")[-1].startswith("pk_test_")


def test_create_api_key_with_scopes_and_limits(workspace):
    secret = run(
        "create_api_key",
        "acme",
        "--scopes",
        "customers:read,events:write",
        "--rate-limit-read",
        "7",
        "--rate-limit-write",
        "8",
        "--rate-limit-events",
        "9",
        "--expires-in-days",
        "3",
    )[-1]
    key = ApiKey.objects.get()
    assert key.scopes == ["customers:read", "events:write"]
    assert (key.rate_limit_read, key.rate_limit_write, key.rate_limit_events) == (7, 8, 9)
    assert 2.9 < (key.expires_at - timezone.now()).total_seconds() / 86400 <= 3
    client = _client_for(secret)
    response = client.get("/v1/customers")
    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "7"
    assert client.post("/v1/customers", {"name": "A"}).status_code == 403


@pytest.mark.parametrize("scopes", ["customers:admin", "everything", "read,bogus", ""])
def test_create_api_key_rejects_bad_scopes(workspace, scopes):
    with pytest.raises(CommandError, match="scope"):
        run("create_api_key", "acme", "--scopes", scopes)
    assert not ApiKey.objects.exists()


def test_create_api_key_rejects_non_positive_limits(workspace):
    with pytest.raises(CommandError):
        run("create_api_key", "acme", "--rate-limit-read", "0")


@pytest.mark.django_db
def test_create_api_key_for_unknown_workspace_is_an_error():
    with pytest.raises(CommandError, match="No workspace with slug 'nope'."):
        run("create_api_key", "nope")


def test_revoke_api_key_by_id_stops_it_at_once(client):
    assert client.get("/v1/customers").status_code == 200
    assert run("revoke_api_key", client.api_key.id) == [f"API key {client.api_key.id} is now revoked."]
    assert client.get("/v1/customers").status_code == 401


def test_revoke_api_key_by_full_key(client):
    assert run("revoke_api_key", client.secret) == [f"API key {client.api_key.id} is now revoked."]
    assert client.get("/v1/customers").status_code == 401


def test_revoke_twice_says_so(client):
    run("revoke_api_key", client.api_key.id)
    assert run("revoke_api_key", client.api_key.id) == [f"API key {client.api_key.id} was already revoked."]


@pytest.mark.django_db
def test_revoke_unknown_key_is_an_error():
    with pytest.raises(CommandError, match="No such API key."):
        run("revoke_api_key", "key_nope")


@pytest.mark.django_db
def test_seed_demo_loads_once_and_prints_a_working_key_each_time():
    from customers.models import Customer

    first = run("seed_demo")
    demo = Workspace.objects.get(slug="demo")
    count = Customer.objects.filter(workspace=demo).count()
    assert count >= 50
    assert first[-1].startswith("pk_live_")
    second = run("seed_demo")
    assert "Demo workspace exists; reusing its data." in second
    assert Customer.objects.filter(workspace=demo).count() == count
    # The demo shows a real spread of health, not one colour.
    statuses = set(Customer.objects.filter(workspace=demo).values_list("health_status", flat=True))
    assert {"healthy", "neutral", "at_risk"} <= statuses
    for secret in (first[-1], second[-1]):
        response = _client_for(secret).get("/v1/customers?limit=3")
        assert response.status_code == 200
        assert len(response.json()["data"]) == 3
    assert any(line.startswith("Admin:") for line in second)


@pytest.mark.django_db
def test_seed_demo_rerun_keeps_the_admin_password_and_prints_it_only_once(django_user_model):
    first = run("seed_demo")
    assert [line for line in first if line.startswith("Admin:")][0].split("password ")[1]
    admin = django_user_model.objects.get(username="admin")
    admin.set_password("my-own-chosen-password-42")
    admin.save()

    second = run("seed_demo")

    assert django_user_model.objects.get(username="admin").check_password("my-own-chosen-password-42")
    assert [line for line in second if line.startswith("Admin:")] == [
        "Admin:   /admin/  user 'admin' (existing password kept; change it with `manage.py changepassword admin`)"
    ]


@pytest.mark.django_db
def test_seed_demo_reads_like_a_book_of_business():
    from customers.models import Customer
    from health.models import ExternalSignal

    run("seed_demo")
    customers = list(Customer.objects.filter(workspace__slug="demo"))
    scores = [c.health_score for c in customers if c.health_score is not None]
    # Spread over the range: most score deciles used, no pile of one value (such as 0.0). Full
    # marks are the exception: every account that maxes out each signal shares the top score,
    # and how many do depends on the weekday the demo is seeded (weekends are quieter); at most
    # the power-user share of the demo (15%) plus one.
    assert len({min(int(score // 10), 9) for score in scores}) >= 7
    top = max(scores)
    assert top <= 100.0  # full marks read 100, however the rounded contributions add up
    assert max(scores.count(score) for score in set(scores) if score != top) <= len(customers) // 10
    assert scores.count(top) <= len(customers) * 0.15 + 1
    assert all(c.owner and c.plan for c in customers)
    mrr = ExternalSignal.objects.filter(customer__in=customers, key="billing.mrr", value__gt=0)
    assert mrr.count() >= len(customers) * 0.8
