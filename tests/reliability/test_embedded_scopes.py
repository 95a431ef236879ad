"""The embedding rule, proved over every GET route the URL configuration has: a key holding
every read scope but customers:read reads no customer's name, email, external id, owner or
domain anywhere, through any endpoint (at-risk entries, webhook payloads, ...). The same walk
with customers:read finds them, so the probe can see a leak. A route this file cannot fill in
fails the test, so a new one is covered when it is added."""

from __future__ import annotations

from health.services import rescore_customers
from tests.reliability.conftest import WEBHOOK_URL, seed_workspace
from tests.reliability.test_tenant_isolation import readable_urls

PII = {
    "name": "Secret Holdings",
    "email": "ceo@secret.example",
    "owner": "owner@secret.example",
    "external_id": "secret-ext-1",
    "domain": "secret.example",
}
# Query strings that make a route list what it would otherwise leave out.
EXTRA_QUERIES = {"health-at-risk": [{"threshold": "100"}]}
ALL_BUT_CUSTOMERS = "health:read,events:read,integrations:read,webhooks:read"


def _bodies(api, seeded: dict) -> dict[str, str]:
    """Every GET route's body, by URL, with the seeded workspace's ids (and every message)."""
    bodies = {}
    for entry, _, _, _, url in readable_urls(seeded):
        for params in [{}, *EXTRA_QUERIES.get(entry.name, [])]:
            response = api.get(url, params)
            if response.status_code == 404 and "/deliveries/" in url:
                continue  # a message paired with another endpoint: every pair is tried
            assert response.status_code in (200, 403), (url, params, response.content[:300])
            bodies[f"{url}?{params}"] = response.content.decode()
    return bodies


def test_no_route_shows_customer_fields_without_customers_read(
    workspace, make_client, offline_dns, fake_providers, django_capture_on_commit_callbacks
):
    owner = make_client(workspace, rate_limit_read=100_000, rate_limit_write=100_000)
    with django_capture_on_commit_callbacks(execute=True):
        # The endpoint first, so every customer write below is in a payload.
        assert owner.post("/v1/webhooks", {"url": WEBHOOK_URL, "events": ["*"]}).status_code == 201
        seeded = seed_workspace(owner, **PII)
        # Won back (the seed churns it; a churned customer is not on the at-risk list).
        updated = owner.patch(
            f"/v1/customers/{seeded.customer}", {"email": "new@secret.example", "lifecycle_stage": "active"}
        )
        assert updated.status_code == 200
        rescore_customers(workspace_id=workspace.id)  # so it has a score and at-risk lists it
    webhooks = [endpoint["id"] for endpoint in owner.get("/v1/webhooks").json()["data"]]
    messages = [
        message["id"]
        for webhook in webhooks
        for message in owner.get(f"/v1/webhooks/{webhook}/deliveries", {"limit": 100}).json()["data"]
    ]
    ids = {
        "customer": [seeded.customer],
        "event": [seeded.event],
        "webhook": webhooks,
        "message": messages,
        "integration": [seeded.integration],
        # The metric's routes (its cohorts give customers' values only in aggregate).
        "metric": [seeded.metric],
        # Jobs report workspace-wide figures only.
        "backtest": [seeded.backtest],
        "fit": [seeded.fit],
    }
    secrets = [*PII.values(), "new@secret.example"]

    blind = _bodies(make_client(workspace, scopes=ALL_BUT_CUSTOMERS, rate_limit_read=100_000), ids)
    retrieved = {url.split("/deliveries/")[1].split("?")[0] for url in blind if "/deliveries/" in url}
    assert retrieved == set(messages) and len(messages) >= 3
    leaks = {url: [s for s in secrets if s in body] for url, body in blind.items()}
    assert not {url: found for url, found in leaks.items() if found}

    sighted = _bodies(make_client(workspace, scopes=f"{ALL_BUT_CUSTOMERS},customers:read"), ids)
    shown = {url for url, body in sighted.items() if PII["name"] in body}
    assert any("/health/at-risk" in url for url in shown), sorted(shown)
    assert any("/deliveries" in url for url in shown), sorted(shown)
