from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer
from tests.platform.helpers import assert_error
from tests.support.worker import wait_for


def _a_request_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        # The activity view is a per-transaction snapshot and this runs inside one: refresh it.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["delete", "patch"])
def test_a_write_racing_a_delete_is_a_404_not_a_500(client, customer, method):
    """The request found the customer, then waited for its row lock while another request deleted
    it: the answer is the 404 a moment later would have given."""
    responses = []

    def request() -> None:
        try:
            call = getattr(client, method)
            args = ({"name": "Renamed"},) if method == "patch" else ()
            responses.append(call(f"/v1/customers/{customer['id']}", *args))
        finally:
            connection.close()

    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=customer["id"])
        thread = threading.Thread(target=request)
        thread.start()
        wait_for(_a_request_waits_for_a_row_lock, timeout=10)
        Customer.objects.filter(pk=customer["id"]).update(deleted_at=timezone.now(), external_id=None)
    thread.join(10)
    assert not thread.is_alive()
    [response] = responses
    assert_error(
        response, 404, "invalid_request_error", "resource_missing", f"No such customer: '{customer['id']}'."
    )
