from __future__ import annotations

import pytest

from customers import hooks, services
from customers.models import Customer
from tests.platform.helpers import assert_error


def test_delete_answers_the_deleted_stub(client, customer):
    response = client.delete(f"/v1/customers/{customer['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": customer["id"], "object": "customer", "deleted": True}


def test_deleted_customer_is_404_everywhere(client, customer):
    client.delete(f"/v1/customers/{customer['id']}")
    message = f"No such customer: '{customer['id']}'."
    for response in (
        client.get(f"/v1/customers/{customer['id']}"),
        client.patch(f"/v1/customers/{customer['id']}", {"name": "x"}),
        client.delete(f"/v1/customers/{customer['id']}"),
    ):
        assert_error(response, 404, "invalid_request_error", "resource_missing", message)


def test_delete_purges_the_row_and_runs_every_purger(client, customer, django_capture_on_commit_callbacks):
    purged = []
    purger = hooks.register_customer_purger(purged.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            client.delete(f"/v1/customers/{customer['id']}")
    finally:
        hooks._purgers.remove(purger)
    assert purged == [customer["id"]]
    assert not Customer.all_objects.filter(pk=customer["id"]).exists()


def test_a_lost_purge_is_caught_up(workspace, create):
    """If the broker was down at delete time, the periodic sweep purges the customer."""
    customer = create()
    Customer.objects.filter(pk=customer["id"]).update(external_id=None)
    Customer.all_objects.filter(pk=customer["id"]).update(deleted_at="2026-01-01T00:00:00Z")
    assert services.purge_pending_customers() == 1
    assert not Customer.all_objects.filter(pk=customer["id"]).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_delete_purges_through_a_real_worker(workspace, make_client, celery_worker_process):
    from tests.support.worker import wait_for

    client = make_client(workspace)
    customer = client.post("/v1/customers", {"name": "Gone"}).json()
    assert client.delete(f"/v1/customers/{customer['id']}").status_code == 200
    assert client.get(f"/v1/customers/{customer['id']}").status_code == 404
    wait_for(lambda: not Customer.all_objects.filter(pk=customer["id"]).exists(), timeout=30)
