"""The endpoints resource: create, read, update, delete, validation and limits."""

from __future__ import annotations

import base64
import re

import pytest

from webhooks.catalog import valid_subscriptions

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    body = dict(response.json()["error"])
    assert body.pop("request_id").startswith("req_")
    return body


def test_create_returns_the_endpoint_with_its_secret(client, receiver):
    response = client.post(
        "/v1/webhooks",
        {"url": receiver.url(), "events": ["customer.created", "health.at_risk"], "description": "CRM sync"},
    )
    assert response.status_code == 201
    body = response.json()
    secret = body.pop("secret")
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert body == {
        "id": body["id"],
        "object": "webhook_endpoint",
        "url": receiver.url(),
        "description": "CRM sync",
        "events": ["customer.created", "health.at_risk"],
        "active": True,
        "status": "enabled",
        "disabled_reason": None,
        "previous_secret_expires_at": None,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["id"].startswith("we_")


def test_retrieve_and_list_never_show_the_secret(client, endpoint):
    secret = endpoint.pop("secret")
    retrieved = client.get(f"/v1/webhooks/{endpoint['id']}")
    listed = client.get("/v1/webhooks")
    assert retrieved.json() == endpoint
    assert listed.json() == {"object": "list", "url": "/v1/webhooks", "has_more": False, "data": [endpoint]}
    assert secret not in retrieved.content.decode() + listed.content.decode()


def test_patch_changes_only_the_fields_sent(client, endpoint):
    response = client.patch(
        f"/v1/webhooks/{endpoint['id']}", {"events": ["customer.deleted"], "active": False}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["events"] == ["customer.deleted"]
    assert body["active"] is False
    assert body["url"] == endpoint["url"]
    assert "secret" not in body


def test_delete_answers_the_deleted_object(client, endpoint):
    response = client.delete(f"/v1/webhooks/{endpoint['id']}")
    assert response.json() == {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}
    assert client.get(f"/v1/webhooks/{endpoint['id']}").status_code == 404


def test_unknown_event_type_lists_the_valid_ones(client, receiver):
    response = client.post(
        "/v1/webhooks", {"url": receiver.url(), "events": ["customer.created", "customer.exploded"]}
    )
    assert response.status_code == 400
    valid = ", ".join(valid_subscriptions())
    message = f"events: Unknown event type: 'customer.exploded'. Valid types: {valid}."
    assert error(response) == {
        "type": "invalid_request_error",
        "code": "parameter_invalid",
        "message": message,
        "param": "events",
        "errors": [{"param": "events", "code": "parameter_invalid", "message": message}],
    }


def test_empty_events_is_refused(client, receiver):
    response = client.post("/v1/webhooks", {"url": receiver.url(), "events": []})
    assert response.status_code == 400
    assert error(response)["param"] == "events"
    assert "at least one event type" in error(response)["message"]


def test_wildcard_cannot_be_mixed_with_types(client, receiver):
    response = client.post("/v1/webhooks", {"url": receiver.url(), "events": ["*", "customer.created"]})
    assert response.status_code == 400
    assert error(response)["param"] == "events"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://hooks.example.com/x",
            "url must be an absolute https:// URL, such as 'https://example.com/hooks'.",
        ),
        ("/relative/path", "url must be an absolute https:// URL, such as 'https://example.com/hooks'."),
        ("ftp://example.com/x", "url must be an absolute https:// URL, such as 'https://example.com/hooks'."),
        ("https://user:pass@example.com/x", "url must not contain credentials (user:password@)."),
        ("https://example.com/" + "a" * 2030, "url must be at most 2048 characters."),
        ("https://example.com/a\r\nX-Evil: 1", "url must not contain whitespace or control characters."),
    ],
)
def test_invalid_urls_are_refused(client, url, message, settings):
    settings.PERLY_WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = client.post("/v1/webhooks", {"url": url, "events": ["*"]})
    assert response.status_code == 400
    assert error(response) == {
        "type": "invalid_request_error",
        "code": "parameter_invalid",
        "message": message,
        "param": "url",
        "errors": [{"param": "url", "code": "parameter_invalid", "message": message}],
    }


def test_url_of_exactly_2048_characters_is_accepted(client, fake_dns, settings):
    settings.PERLY_WEBHOOK_ALLOW_PRIVATE_URLS = False
    fake_dns({"hooks.example.com": "93.184.215.14"})
    url = "https://hooks.example.com/" + "a" * (2048 - len("https://hooks.example.com/"))
    response = client.post("/v1/webhooks", {"url": url, "events": ["*"]})
    assert response.status_code == 201, response.content


def test_description_with_line_breaks_is_refused(client, receiver):
    response = client.post(
        "/v1/webhooks", {"url": receiver.url(), "events": ["*"], "description": "ok\r\nX-Injected: yes"}
    )
    assert response.status_code == 400
    assert error(response)["param"] == "description"
    assert "control characters" in error(response)["message"]


def test_read_only_and_unknown_fields_are_refused(client, receiver):
    response = client.post(
        "/v1/webhooks", {"url": receiver.url(), "events": ["*"], "secret": "whsec_mine", "colour": "red"}
    )
    assert response.status_code == 400
    assert {e["param"]: e["code"] for e in response.json()["error"]["errors"]} == {
        "secret": "parameter_unknown",
        "colour": "parameter_unknown",
    }
    status = client.post("/v1/webhooks", {"url": receiver.url(), "events": ["*"], "status": "disabled"})
    assert error(status)["code"] == "parameter_read_only"


def test_at_most_twenty_endpoints_per_workspace(client, receiver, make_endpoint):
    for index in range(20):
        make_endpoint(receiver.url(f"/hook{index}"))
    response = client.post("/v1/webhooks", {"url": receiver.url("/one-too-many"), "events": ["*"]})
    assert response.status_code == 400
    assert error(response) == {
        "type": "invalid_request_error",
        "code": "endpoint_limit_reached",
        "message": "A workspace can have at most 20 webhook endpoints; delete one before adding another.",
        "param": None,
    }


def test_patch_status_enabled_re_enables_a_disabled_endpoint(client, endpoint):
    disabled = client.patch(f"/v1/webhooks/{endpoint['id']}", {"status": "disabled"}).json()
    assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "Disabled through the API.")
    enabled = client.patch(f"/v1/webhooks/{endpoint['id']}", {"status": "enabled"}).json()
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)


def test_read_scope_cannot_create(make_client, workspace, receiver):
    reader = make_client(workspace, scopes="webhooks:read")
    response = reader.post("/v1/webhooks", {"url": receiver.url(), "events": ["*"]})
    assert response.status_code == 403
    assert error(response)["code"] == "insufficient_permissions"
    assert reader.get("/v1/webhooks").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/webhooks/{id}"),
        ("patch", "/v1/webhooks/{id}"),
        ("delete", "/v1/webhooks/{id}"),
        ("post", "/v1/webhooks/{id}/rotate_secret"),
        ("post", "/v1/webhooks/{id}/test"),
        ("get", "/v1/webhooks/{id}/deliveries"),
    ],
)
def test_another_workspaces_endpoint_is_404(other_client, endpoint, method, path):
    response = getattr(other_client, method)(
        path.format(id=endpoint["id"]), {} if method == "patch" else None
    )
    assert response.status_code == 404
    assert error(response)["code"] == "resource_missing"


def test_malformed_endpoint_id_is_404(client):
    assert client.get("/v1/webhooks/we_nope").status_code == 404
    assert client.get("/v1/webhooks/we_nope/deliveries").status_code == 404
