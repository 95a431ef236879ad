"""external_id equality: the same text after Unicode NFC and trimming, everywhere an external id
is read (create, update, the list filter, event ingestion, the admin and integrations' writes)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from customers.models import Customer
from customers.services import customers_create_bulk
from events.models import Event
from tests.events.conftest import post_events

pytestmark = pytest.mark.django_db

NFC = "caf\u00e9"  # é as one code point
NFD = "cafe\u0301"  # e + combining acute accent
assert NFC != NFD

# The same id as it arrives from other systems.
SPELLINGS = [NFC, NFD, f" {NFC}", f"{NFD} ", f"\t{NFD}\n", f"\u00a0{NFC}\u2003", f"\u3000{NFD}"]


def _create(client, external_id, name="Café SARL"):
    return client.post("/v1/customers", {"name": name, "external_id": external_id}, format="json")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_create_stores_the_normalized_form(client, spelling):
    response = _create(client, spelling)
    assert response.status_code == 201, response.content
    assert response.json()["external_id"] == NFC
    assert Customer.objects.get().external_id == NFC


@pytest.mark.parametrize("second", SPELLINGS)
def test_the_two_unicode_forms_are_one_customer(client, second):
    first = _create(client, NFC).json()
    response = _create(client, second)
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("resource_already_exists", "external_id")
    assert first["id"] in error["message"]
    assert Customer.objects.count() == 1


def test_update_normalizes_and_conflicts_on_the_normalized_form(client):
    taken = _create(client, NFC).json()
    other = _create(client, "acct_2", name="Other").json()
    response = client.patch(f"/v1/customers/{other['id']}", {"external_id": f" {NFD} "}, format="json")
    assert response.status_code == 409
    assert taken["id"] in response.json()["error"]["message"]
    response = client.patch(f"/v1/customers/{other['id']}", {"external_id": "Ame\u0301lie "}, format="json")
    assert response.status_code == 200
    assert response.json()["external_id"] == "Am\u00e9lie"


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_list_filter_finds_the_customer_in_any_spelling(client, spelling):
    created = _create(client, NFD).json()
    listed = client.get("/v1/customers", {"external_id": spelling}).json()["data"]
    assert [c["id"] for c in listed] == [created["id"]]


@pytest.mark.parametrize("spelling", ["acct_1 ", " acct_1", "\tacct_1\n", "\u00a0acct_1\u2003"])
def test_ingestion_trims_the_external_id(client, spelling):
    customer = _create(client, "acct_1", name="Acme").json()
    response = post_events(client, [{"customer_external_id": spelling, "type": "login"}])
    assert response.status_code in (200, 202), response.content
    assert response.json()["accepted"] == 1, response.content
    assert Event.objects.get().customer_id == customer["id"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_ingestion_matches_either_unicode_form(client, spelling):
    customer = _create(client, NFC).json()
    response = post_events(client, [{"customer_external_id": spelling, "type": "login"}])
    assert response.json()["accepted"] == 1, response.content
    assert Event.objects.get().customer_id == customer["id"]


def test_ingestion_refuses_an_external_id_of_only_whitespace(client):
    response = post_events(client, [{"customer_external_id": " \u3000\t", "type": "login"}])
    body = response.json()
    assert body["accepted"] == 0
    assert body["rejected"][0]["code"] == "parameter_invalid"
    assert body["rejected"][0]["param"] == "customer_external_id"


def test_case_still_matters(client):
    assert _create(client, "ACCT_1").status_code == 201
    assert _create(client, "acct_1").status_code == 201


def test_bulk_creates_from_integrations_normalize_too(workspace):
    from perly.errors import ApiError

    with pytest.raises(ApiError) as conflict:
        customers_create_bulk(
            workspace_id=workspace.id,
            rows=[{"name": "A", "external_id": NFC}, {"name": "B", "external_id": NFD}],
        )
    assert conflict.value.status == 409
    (created,) = customers_create_bulk(
        workspace_id=workspace.id, rows=[{"name": "A", "external_id": f"{NFD} "}]
    )
    assert created.external_id == NFC


def test_normalize_external_ids_rewrites_old_rows_and_reports_conflicts(workspace):
    # Rows written before normalization (straight to the table, as the old code could).
    old = Customer.objects.create(workspace_id=workspace.id, name="Old", external_id=f"{NFD} ")
    twin_a = Customer.objects.create(workspace_id=workspace.id, name="A", external_id="Ame\u0301lie")
    twin_b = Customer.objects.create(workspace_id=workspace.id, name="B", external_id="Am\u00e9lie")
    out = io.StringIO()
    call_command("normalize_external_ids", stdout=out)
    old.refresh_from_db(), twin_a.refresh_from_db(), twin_b.refresh_from_db()
    assert old.external_id == NFC
    assert (twin_a.external_id, twin_b.external_id) == ("Ame\u0301lie", "Am\u00e9lie")  # a person decides
    assert "Normalized 1 external id(s)." in out.getvalue()
    assert f"Conflict: {twin_a.pk}" in out.getvalue()
