"""Staff customer pages: searchable, filterable list; detail with metadata; edits go through services."""

from __future__ import annotations

import csv
import io

import pytest

from customers.models import Customer


@pytest.fixture
def customers(create):
    return [
        create(
            name="Initech",
            plan="growth",
            lifecycle_stage="active",
            owner="maya@acme.io",
            metadata={"region": "emea"},
        ),
        create(name="Globex", plan="starter", lifecycle_stage="trial", external_id="g1"),
    ]


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("", ["Initech", "Globex"], []),
        ("?q=initech", ["Initech"], ["Globex"]),
        ("?q=g1", ["Globex"], ["Initech"]),
        ("?lifecycle_stage__exact=trial", ["Globex"], ["Initech"]),
        ("?plan__exact=growth", ["Initech"], ["Globex"]),
        ("?health_status__exact=healthy", [], ["Initech", "Globex"]),
        ("?q=maya", ["Initech"], ["Globex"]),
        ("?owner=maya%40acme.io", ["Initech"], ["Globex"]),
        ("?dropped_7d=any", [], ["Initech", "Globex"]),
    ],
)
def test_list_search_and_filters(admin_client, customers, query, shown, hidden):
    response = admin_client.get(f"/admin/customers/customer/{query}")
    assert response.status_code == 200
    page = response.content.decode()
    assert all(name in page for name in shown)
    assert not any(f">{name}<" in page for name in hidden)


def test_search_by_id_is_exact(admin_client, customers):
    """Staff paste whole ids; a fragment of a random id must not match unrelated customers."""
    initech = customers[0]["id"]
    page = admin_client.get(f"/admin/customers/customer/?q={initech}").content.decode()
    assert ">Initech<" in page and ">Globex<" not in page
    page = admin_client.get(f"/admin/customers/customer/?q={initech[4:9]}").content.decode()
    assert ">Initech<" not in page


def test_detail_shows_metadata(admin_client, customers):
    response = admin_client.get(f"/admin/customers/customer/{customers[0]['id']}/change/")
    assert response.status_code == 200
    assert "&quot;region&quot;: &quot;emea&quot;" in response.content.decode()


def test_add_form_loads(admin_client, workspace):
    assert admin_client.get("/admin/customers/customer/add/").status_code == 200


def test_add_through_the_admin_creates_the_customer(admin_client, workspace, client):
    response = admin_client.post(
        "/admin/customers/customer/add/",
        {"workspace": workspace.pk, "name": "Hooli", "external_id": "h1", "metadata": '{"tier": "gold"}'},
    )
    assert response.status_code == 302, response.content
    customer = Customer.objects.get(name="Hooli")
    body = client.get(f"/v1/customers/{customer.id}").json()
    assert body["external_id"] == "h1" and body["metadata"] == {"tier": "gold"}


def test_duplicate_external_id_in_the_admin_is_a_form_error(admin_client, workspace, customers):
    response = admin_client.post(
        "/admin/customers/customer/add/",
        {"workspace": workspace.pk, "name": "Again", "external_id": "g1", "metadata": "{}"},
    )
    assert response.status_code == 200
    assert "A customer with this external_id already exists in this workspace." in response.content.decode()
    assert Customer.objects.filter(external_id="g1").count() == 1


def test_edit_in_the_admin_replaces_metadata(admin_client, workspace, customers, client):
    customer_id = customers[0]["id"]
    response = admin_client.post(
        f"/admin/customers/customer/{customer_id}/change/",
        {
            "workspace": workspace.pk,
            "name": "Initech Inc",
            "plan": "growth",
            "lifecycle_stage": "active",
            "metadata": '{"tier": "gold"}',
        },
    )
    assert response.status_code == 302, response.content
    body = client.get(f"/v1/customers/{customer_id}").json()
    assert body["name"] == "Initech Inc" and body["metadata"] == {"tier": "gold"}


def test_delete_in_the_admin_hides_and_purges(admin_client, customers, client):
    customer_id = customers[0]["id"]
    response = admin_client.post(f"/admin/customers/customer/{customer_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert client.get(f"/v1/customers/{customer_id}").status_code == 404


def test_workspace_is_read_only_once_created(admin_client, customers, other_workspace):
    customer_id = customers[0]["id"]
    page = admin_client.get(f"/admin/customers/customer/{customer_id}/change/").content.decode()
    assert 'name="workspace"' not in page
    admin_client.post(
        f"/admin/customers/customer/{customer_id}/change/",
        {"workspace": other_workspace.pk, "name": "Initech", "metadata": "{}"},
    )
    assert Customer.objects.get(pk=customer_id).workspace_id != other_workspace.pk


def test_csv_export_keeps_formula_like_names_as_text(admin_client, create):
    evil = create(name="=HYPERLINK(1)", owner="jon@acme.io")
    response = admin_client.post(
        "/admin/customers/customer/", {"action": "export_csv", "_selected_action": [evil["id"]]}
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["id", "name", "owner"]
    assert rows[1][:3] == [evil["id"], "'=HYPERLINK(1)", "jon@acme.io"]
