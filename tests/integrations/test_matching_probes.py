"""Matching's rules (deleted customers and other workspaces left out, the oldest of several
candidates first, a link to a deleted customer matched again), and integrations.probes (the
per-key reads of links and of the signals phase): each row once, nothing for no keys."""

from __future__ import annotations

import pytest
from django.utils import timezone

from customers.models import Customer
from integrations.matching import match_accounts
from integrations.probes import probe
from integrations.providers.base import AccountMatch, Record

pytestmark = pytest.mark.django_db


def _account(provider_id: str, email: str | None = None, domain: str | None = None) -> Record:
    return Record(
        stream="customers",
        provider_id=provider_id,
        data={},
        match=AccountMatch(name=provider_id, email=email, domain=domain, rules=("email", "email_domain")),
    )


def _customer(workspace, pk: str, **fields) -> Customer:
    return Customer.objects.create(id=pk, workspace=workspace, **fields)


def test_the_oldest_live_customer_of_the_workspace_matches(workspace, other_workspace):
    _customer(workspace, "cus_b", name="Newer", email="billing@acme.com")
    oldest = _customer(workspace, "cus_a", name="Older", email="billing@acme.com")
    _customer(workspace, "cus_0", name="Deleted", email="billing@acme.com", deleted_at=timezone.now())
    _customer(other_workspace, "cus_00", name="Theirs", email="billing@acme.com", domain="globex.com")
    by_domain = _customer(workspace, "cus_c", name="Globex", domain="globex.com")

    outcome = match_accounts(
        workspace_id=workspace.id,
        records=[
            _account("acct_1", email="billing@acme.com"),
            _account("acct_2", email="ap@globex.com", domain="globex.com"),
        ],
        linked={},
        create_customers=False,
    )
    assert outcome.customer_ids == {"acct_1": oldest.pk, "acct_2": by_domain.pk}
    assert (outcome.matched, outcome.created) == (2, 0)


def test_a_link_to_a_deleted_customer_is_matched_again(workspace):
    gone = _customer(workspace, "cus_a", name="Gone", email="x@acme.com", deleted_at=timezone.now())
    live = _customer(workspace, "cus_b", name="Live", email="x@acme.com")
    outcome = match_accounts(
        workspace_id=workspace.id,
        records=[_account("acct_1", email="x@acme.com"), _account("acct_2", email="y@acme.com")],
        linked={"acct_1": gone.pk, "acct_2": live.pk},
        create_customers=False,
    )
    assert outcome.customer_ids == {"acct_1": live.pk, "acct_2": live.pk}
    assert outcome.matched == 1  # acct_2 kept its link


def test_probe_returns_each_row_once_and_no_rows_for_no_values(workspace):
    _customer(workspace, "cus_a", name="A", email="a@acme.com")
    _customer(workspace, "cus_b", name="B", email="b@acme.com")
    table = Customer._meta.db_table
    rows = probe(
        table=table,
        columns=("id",),
        scope=("workspace_id", workspace.id),
        key="email",
        values=["b@acme.com", "a@acme.com", "b@acme.com", "c@acme.com"],
        order_by="id",
    )
    assert rows == [("cus_a",), ("cus_b",)]
    assert (
        probe(table=table, columns=("id",), scope=("workspace_id", workspace.id), key="email", values=[])
        == []
    )
