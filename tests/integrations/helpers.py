from __future__ import annotations

from integrations.models import StreamState, SyncedRecord


def sync_now(client, integration_id: str) -> dict:
    """Request a manual sync (it runs eagerly on commit) and return the finished run."""
    response = client.post(f"/v1/integrations/{integration_id}/sync")
    assert response.status_code == 202, response.content
    return client.get(f"/v1/integrations/{integration_id}").json()["last_sync"]


def records(integration_id: str, stream: str) -> list[SyncedRecord]:
    return list(SyncedRecord.objects.filter(integration_id=integration_id, stream=stream))


def cursor(integration_id: str, stream: str) -> dict:
    return StreamState.objects.get(integration_id=integration_id, stream=stream).cursor


def signals_of(client, customer_id: str) -> dict[str, dict]:
    response = client.get(f"/v1/signals/{customer_id}")
    assert response.status_code == 200, response.content
    return {s["key"]: s for s in response.json()["data"]}
