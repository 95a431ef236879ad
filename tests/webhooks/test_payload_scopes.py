"""Reading deliveries back: a payload's object is shown in full only to a key that may read that
object's resource; otherwise it is its reference and previous_attributes are withheld."""

from __future__ import annotations

import orjson
import pytest

PII = {"name": "Secret Holdings", "email": "ceo@secret.example", "external_id": "secret-ext-1"}


@pytest.fixture
def customer_messages(client, endpoint, publish):
    customer = publish("post", "/v1/customers", {**PII, "owner": "owner@secret.example"}).json()
    publish("patch", f"/v1/customers/{customer['id']}", {"email": "new@secret.example"})
    return customer


def _events(api, endpoint_id: str) -> dict[str, dict]:
    response = api.get(f"/v1/webhooks/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.content
    return {message["type"]: message["event"] for message in response.json()["data"]}


def test_a_webhooks_key_sees_customer_payloads_by_id_only(
    workspace, make_client, endpoint, customer_messages
):
    reader = make_client(workspace, scopes="webhooks:read")
    events = _events(reader, endpoint["id"])
    customer_id = customer_messages["id"]
    assert events["customer.created"]["data"] == {
        "object": {"id": customer_id, "object": "customer"},
        "previous_attributes": None,
    }
    assert events["customer.updated"]["data"] == {
        "object": {"id": customer_id, "object": "customer"},
        "previous_attributes": {},
    }
    # The envelope around it is the webhooks resource's own: unchanged.
    assert events["customer.created"]["type"] == "customer.created"
    assert events["customer.created"]["id"].startswith("msg_")
    body = reader.get(f"/v1/webhooks/{endpoint['id']}/deliveries").content.decode()
    for secret in (*PII.values(), "owner@secret.example", "new@secret.example"):
        assert secret not in body


def test_the_same_on_retrieve_and_retry(workspace, make_client, endpoint, customer_messages, client):
    messages = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries").json()["data"]
    writer = make_client(workspace, scopes="webhooks:write")
    for message in messages:
        url = f"/v1/webhooks/{endpoint['id']}/deliveries/{message['id']}"
        for response in (writer.get(url), writer.post(f"{url}/retry")):
            assert response.status_code == 200, response.content
            assert response.json()["event"]["data"]["object"] == {
                "id": customer_messages["id"],
                "object": "customer",
            }


def test_with_customers_read_the_payload_is_shown_as_delivered(
    workspace, make_client, endpoint, customer_messages, receiver
):
    events = _events(make_client(workspace, scopes="webhooks:read,customers:read"), endpoint["id"])
    assert events["customer.created"]["data"]["object"]["email"] == PII["email"]
    assert events["customer.updated"]["data"]["previous_attributes"] == {"email": PII["email"]}
    bodies = [orjson.loads(request.body) for request in receiver.requests]
    delivered = {body["id"]: body for body in bodies}
    for event in events.values():
        assert delivered[event["id"]] == event


def test_the_rule_follows_the_object_type(workspace, make_client, endpoint):
    # webhook.test carries the endpoint itself: the webhooks scope reads it in full.
    writer = make_client(workspace, scopes="webhooks:write")
    sent = writer.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert sent.status_code == 201, sent.content
    assert sent.json()["event"]["data"]["object"]["url"] == endpoint["url"]


def test_unlisted_and_health_objects_are_reduced_to_their_reference():
    from perly.scopes import embedded_event

    health = {
        "id": "msg_1",
        "object": "event",
        "type": "health.at_risk",
        "data": {
            "object": {"object": "health_score", "customer": "cus_1", "score": 12.0, "signals": []},
            "previous_attributes": {"status": "healthy", "score": 80.0},
        },
    }
    reduced = embedded_event(frozenset({"webhooks:read"}), health)
    assert reduced["data"] == {
        "object": {"object": "health_score", "customer": "cus_1"},
        "previous_attributes": {},
    }
    assert embedded_event(frozenset({"webhooks:read", "health:read"}), health) == health
    unknown = {**health, "data": {"object": {"id": "x_1", "object": "brand_new", "secret": 1}}}
    assert embedded_event(frozenset({"read"}), unknown)["data"]["object"] == {
        "id": "x_1",
        "object": "brand_new",
    }
