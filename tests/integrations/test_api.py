"""The /v1/integrations API: connect, list, retrieve, disconnect, sync now."""

from __future__ import annotations

import logging
import socket

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from integrations.models import Integration, SyncRun
from tests.integrations.conftest import STRIPE_KEY, connect

pytestmark = pytest.mark.django_db(transaction=True)


def test_connect_checks_credentials_stores_them_encrypted_and_runs_the_initial_sync(client, fake_stripe):
    fake_stripe.add_customer(email="ops@initech.com", name="Initech")

    response = connect(client, "stripe", {"api_key": STRIPE_KEY})

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("int_")
    assert body["object"] == "integration"
    assert body["provider"] == "stripe"
    assert body["status"] == "active"
    assert body["credentials"] == {"api_key": "sk_…p7dc"}
    assert body["config"] == {"sync_interval_minutes": 60, "create_customers": True}
    assert body["last_sync"]["trigger"] == "initial"
    assert body["last_sync"]["status"] == "succeeded"
    assert body["last_sync"]["stats"]["customers_created"] == 1
    assert body["last_synced_at"] is not None and body["next_sync_at"] is not None
    stored = Integration.objects.get(pk=body["id"])
    assert STRIPE_KEY not in stored.credentials_encrypted
    assert fake_stripe.requests_to("/v1/customers")[0].query == {"limit": ["1"]}  # the check came first


@pytest.mark.django_db  # nothing is committed for a sync to run: a rolled-back test suffices (no flush)
def test_rejected_credentials_get_the_providers_reason_and_store_nothing(client, fake_stripe):
    response = connect(client, "stripe", {"api_key": "sk_test_wrongwrongwrongwrong1234"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "integration_credentials_invalid"
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "credentials"
    assert error["message"].startswith("Stripe refused these credentials: Invalid API Key")
    assert "wrongwrong" not in response.content.decode()
    assert Integration.objects.count() == 0


@pytest.mark.django_db
def test_unreachable_provider_gets_one_plain_sentence_and_stores_nothing(client):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{port}"):
        response = connect(client, "stripe", {"api_key": STRIPE_KEY})

    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "integration_provider_unavailable",
        "Could not reach Stripe to check the credentials; nothing was saved. Try again in a few minutes.",
    )
    assert Integration.objects.count() == 0


def test_second_live_integration_of_a_provider_gets_409(client, connect_stripe):
    first = connect_stripe()

    response = connect(client, "stripe", {"api_key": STRIPE_KEY})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "resource_already_exists"
    assert first["id"] in response.json()["error"]["message"]


def test_a_disconnected_integration_does_not_block_a_new_one(client, connect_stripe):
    first = connect_stripe()
    assert client.delete(f"/v1/integrations/{first['id']}").status_code == 200

    assert connect(client, "stripe", {"api_key": STRIPE_KEY}).status_code == 201


@pytest.mark.django_db  # nothing is committed for a sync to run: a rolled-back test suffices (no flush)
@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {
                "provider": "stripe",
                "credentials": {"api_key": STRIPE_KEY},
                "config": {"sync_interval_minutes": 14},
            },
            "config[sync_interval_minutes]",
            "parameter_invalid",
        ),
        (
            {"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}, "config": {"colour": "red"}},
            "config[colour]",
            "parameter_unknown",
        ),
        (
            {"provider": "stripe", "credentials": {"api_key": STRIPE_KEY, "extra": "x"}},
            "credentials[extra]",
            "parameter_unknown",
        ),
        (
            {"provider": "stripe", "credentials": {"api_key": "pk_test_publishable"}},
            "credentials[api_key]",
            "parameter_invalid",
        ),
        (
            {"provider": "salesforce", "credentials": {"client_id": "x"}},
            "credentials[client_secret]",
            "parameter_missing",
        ),
        (
            {
                "provider": "salesforce",
                "credentials": {
                    "client_id": "x",
                    "client_secret": "y",
                    "login_url": "https://evil.example.com",
                },
            },
            "credentials[login_url]",
            "parameter_invalid",
        ),
        ({"provider": "zendesk", "credentials": {}}, "provider", "parameter_invalid"),
        ({"credentials": {"api_key": STRIPE_KEY}}, "provider", "parameter_missing"),
        (
            {"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}, "status": "active"},
            "status",
            "parameter_unknown",
        ),
    ],
)
def test_invalid_bodies_get_400_naming_the_field(client, fake_stripe, body, param, code):
    response = client.post("/v1/integrations", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    assert fake_stripe.requests == []  # nothing was sent to the provider
    assert Integration.objects.count() == 0


def test_config_is_stored_with_defaults_filled_in(client, fake_stripe):
    response = connect(client, "stripe", {"api_key": STRIPE_KEY}, sync_interval_minutes=15)

    assert response.json()["config"] == {"sync_interval_minutes": 15, "create_customers": True}


def test_retrieve_shows_sync_history_newest_first(client, connect_stripe):
    integration = connect_stripe()
    client.post(f"/v1/integrations/{integration['id']}/sync")

    body = client.get(f"/v1/integrations/{integration['id']}").json()

    assert [run["trigger"] for run in body["sync_history"]] == ["manual", "initial"]
    assert body["last_sync"] == body["sync_history"][0]


def test_list_is_scoped_to_the_workspace(client, other_client, connect_stripe):
    integration = connect_stripe()

    assert [i["id"] for i in client.get("/v1/integrations").json()["data"]] == [integration["id"]]
    assert other_client.get("/v1/integrations").json()["data"] == []
    assert client.get("/v1/integrations?provider=hubspot").json()["data"] == []
    assert client.get("/v1/integrations?status=bogus").status_code == 400


def test_list_shows_each_integrations_last_run_without_a_query_per_row(client, workspace):
    def make_integrations(count: int) -> dict[str, str]:
        last = {}
        for _ in range(count):
            integration = Integration.objects.create(
                workspace=workspace, provider="stripe", status="disconnected"
            )
            for trigger in ("initial", "manual"):
                SyncRun.objects.create(
                    workspace=workspace, integration=integration, trigger=trigger, status="failed"
                )
            # the newest run has the greatest id, as in the detail view's sync_history[0]
            last[integration.pk] = integration.sync_runs.order_by("-id").first().pk
        return last

    def listed() -> tuple[dict[str, str], int]:
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/v1/integrations").json()
        return {i["id"]: (i["last_sync"] or {}).get("id") for i in body["data"]}, len(queries)

    listed()  # warms the API key cache, so both counts below are the listing's own
    expected = make_integrations(1)
    shown, queries_for_one = listed()
    assert shown == expected

    expected |= make_integrations(4)
    never_synced = Integration.objects.create(workspace=workspace, provider="hubspot")
    expected[never_synced.pk] = None
    shown, queries_for_six = listed()
    assert shown == expected
    assert queries_for_six == queries_for_one


@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("delete", ""), ("post", "/sync")])
def test_another_workspaces_integration_answers_404(other_client, connect_stripe, method, suffix):
    integration = connect_stripe()

    response = getattr(other_client, method)(f"/v1/integrations/{integration['id']}{suffix}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    assert response.json()["error"]["message"] == f"No such integration: '{integration['id']}'."


@pytest.mark.django_db  # nothing is committed for a sync to run: a rolled-back test suffices (no flush)
def test_malformed_id_answers_404(client):
    assert client.get("/v1/integrations/cus_123").status_code == 404


def test_scopes_are_enforced(workspace, make_client, connect_stripe):
    integration = connect_stripe()
    reader = make_client(workspace, scopes="integrations:read")

    assert reader.get(f"/v1/integrations/{integration['id']}").status_code == 200
    response = reader.post(f"/v1/integrations/{integration['id']}/sync")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"
    assert make_client(workspace, scopes="customers:read").get("/v1/integrations").status_code == 403


def test_sync_now_answers_202_then_409_while_the_run_is_queued(client, connect_stripe, broker_mode):
    integration = connect_stripe()  # the initial run stays queued: no worker in broker mode
    initial = integration["last_sync"]

    response = client.post(f"/v1/integrations/{integration['id']}/sync")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "sync_in_progress"
    assert initial["id"] in response.json()["error"]["message"]

    SyncRun.objects.filter(pk=initial["id"]).update(status="succeeded")
    response = client.post(f"/v1/integrations/{integration['id']}/sync")
    assert response.status_code == 202
    run = response.json()
    assert run["id"].startswith("sync_")
    assert (run["object"], run["status"], run["trigger"], run["integration"]) == (
        "sync_run",
        "queued",
        "manual",
        integration["id"],
    )


def test_disconnect_wipes_credentials_keeps_history_and_refuses_syncs(client, connect_stripe):
    integration = connect_stripe()

    response = client.delete(f"/v1/integrations/{integration['id']}")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "disconnected"
    assert body["credentials"] == {}
    assert body["next_sync_at"] is None
    assert body["disconnected_at"] is not None
    assert Integration.objects.get(pk=integration["id"]).credentials_encrypted == ""
    detail = client.get(f"/v1/integrations/{integration['id']}").json()
    assert len(detail["sync_history"]) == 1
    response = client.post(f"/v1/integrations/{integration['id']}/sync")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "integration_disconnected"
    assert client.delete(f"/v1/integrations/{integration['id']}").status_code == 200  # idempotent


def test_the_secret_never_appears_in_responses_logs_or_admin(client, fake_stripe, caplog, admin_client):
    caplog.set_level(logging.DEBUG)
    fake_stripe.add_customer(email="ops@initech.com", name="Initech")
    seen = [connect(client, "stripe", {"api_key": STRIPE_KEY})]
    integration = seen[0].json()
    run = client.post(f"/v1/integrations/{integration['id']}/sync").json()
    seen += [
        client.get("/v1/integrations"),
        client.get(f"/v1/integrations/{integration['id']}"),
        admin_client.get("/admin/integrations/integration/"),
        admin_client.get(f"/admin/integrations/integration/{integration['id']}/change/"),
        admin_client.get(f"/admin/integrations/syncrun/{run['id']}/change/"),
    ]
    fake_stripe.api_keys.clear()  # now a failing sync: its error must not echo the key either
    client.post(f"/v1/integrations/{integration['id']}/sync")
    seen.append(client.get(f"/v1/integrations/{integration['id']}"))

    assert all(r.status_code == 200 for r in seen[1:])
    texts = [r.content.decode() for r in seen] + [caplog.text]
    secret_part = STRIPE_KEY[len("sk_test_") :]
    assert not [t for t in texts if secret_part in t]
    assert "sk_…p7dc" in seen[4].content.decode()


@pytest.mark.django_db  # nothing is committed for a sync to run: a rolled-back test suffices (no flush)
def test_every_endpoint_is_in_the_openapi_document(anon_client):
    paths = anon_client.get("/v1/openapi.json").json()["paths"]

    assert set(paths["/v1/integrations"]) >= {"get", "post"}
    assert set(paths["/v1/integrations/{id}"]) >= {"get", "delete"}
    assert "202" in paths["/v1/integrations/{id}/sync"]["post"]["responses"]
    assert "409" in paths["/v1/integrations/{id}/sync"]["post"]["responses"]
