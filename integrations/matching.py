"""Mapping provider accounts to Perly customers: an existing link first, then the provider's
own rules (email, email domain, domain, name), else a new customer when the config allows.

Every read is one query per page (not per record); the page's new customers are created in one
batch and updates go through customers.services, so customer webhooks fire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db.models.functions import Lower

from customers import services as customer_services
from customers.models import Customer
from integrations.providers.base import Record

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def domain_from_url(value: str | None) -> str | None:
    """'https://www.Acme.com/about' or 'acme.com' -> 'acme.com'; None when it is not a hostname."""
    if not value:
        return None
    text = str(value).strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    if host.startswith("www."):
        host = host[4:]
    return host if _DOMAIN_RE.match(host) else None


@dataclass
class MatchOutcome:
    customer_ids: dict[str, str] = field(default_factory=dict)  # provider id -> customer id
    created: int = 0
    matched: int = 0
    updated: int = 0


@dataclass
class _Planned:
    """A customer this page will create (in one batch once the page is matched)."""

    name: str
    email: str | None = None
    domain: str | None = None
    pk: str | None = None  # known once created


def _fill_blanks(customer: Customer | _Planned, record: Record) -> dict:
    """Fields Perly does not know yet; never overwrite what the user set."""
    changes = {}
    match = record.match
    if not customer.email and match.email and _EMAIL_RE.match(match.email):
        changes["email"] = match.email
    if not customer.domain and match.domain and _DOMAIN_RE.match(match.domain):
        changes["domain"] = match.domain
    return changes


def _plan(record: Record) -> _Planned:
    match = record.match
    planned = _Planned(name=(match.name or record.provider_id)[:200])
    if match.email and _EMAIL_RE.match(match.email) and len(match.email) <= 254:
        planned.email = match.email
    if match.domain and _DOMAIN_RE.match(match.domain):
        planned.domain = match.domain
    return planned


def match_accounts(
    *, workspace_id: str, records: list[Record], linked: dict[str, str | None], create_customers: bool
) -> MatchOutcome:
    """`linked` maps provider ids already stored to their customer (or None).

    Reads are one query per kind (links, emails, domains, names) for the whole page; the
    customers the page creates are made in one `customers_create_bulk` call at the end.
    """
    outcome = MatchOutcome()
    live = set(
        Customer.objects.filter(
            workspace_id=workspace_id, pk__in=[cid for cid in linked.values() if cid]
        ).values_list("pk", flat=True)
    )
    pending = []
    for record in records:
        customer_id = linked.get(record.provider_id)
        if customer_id in live:
            outcome.customer_ids[record.provider_id] = customer_id
        else:
            pending.append(record)
    if not pending:
        return outcome

    emails = {r.match.email for r in pending if r.match.email}
    domains = {r.match.domain for r in pending if r.match.domain}
    names = {r.match.name.strip().lower() for r in pending if r.match.name and "name" in r.match.rules}
    scope = Customer.objects.filter(workspace_id=workspace_id)
    by_email: dict[str, Customer | _Planned] = {}
    by_domain: dict[str, Customer | _Planned] = {}
    by_name: dict[str, Customer | _Planned] = {}
    # Oldest first, so when several customers qualify the first-created one wins, stably.
    if emails:
        # Customer emails are stored lowercased (the API normalizes them), so an exact match on
        # the lowercased provider email is case-insensitive and uses the (workspace, email) index;
        # a lower() scan would cost a pass over the workspace per page.
        for c in scope.filter(email__in=emails).order_by("id"):
            by_email.setdefault(c.email.lower(), c)
    if domains:
        for c in scope.filter(domain__in=domains).order_by("id"):
            by_domain.setdefault(c.domain, c)
    if names:
        for c in scope.annotate(name_l=Lower("name")).filter(name_l__in=names).order_by("id"):
            by_name.setdefault(c.name.lower(), c)

    assigned: dict[str, Customer | _Planned] = {}
    planned: list[_Planned] = []
    for record in pending:
        match = record.match
        customer = None
        for rule in match.rules:
            if rule == "email" and match.email:
                customer = by_email.get(match.email)
            elif rule in ("email_domain", "domain") and match.domain:
                customer = by_domain.get(match.domain)
            elif rule == "name" and match.name:
                customer = by_name.get(match.name.strip().lower())
            if customer is not None:
                break
        if customer is not None:
            outcome.matched += 1
            changes = _fill_blanks(customer, record)
            if changes and isinstance(customer, _Planned):
                # Not created yet: it is created with these fields (one customer.created webhook).
                for name, value in changes.items():
                    setattr(customer, name, value)
                outcome.updated += 1
            elif changes:
                customer = customer_services.customer_update(
                    workspace_id=workspace_id, customer_id=customer.pk, data=changes
                )
                outcome.updated += 1
        elif create_customers:
            customer = _plan(record)
            planned.append(customer)
            outcome.created += 1
        else:
            continue
        assigned[record.provider_id] = customer
        # Later records of this page (same company, same domain) match the customer just made.
        if customer.email:
            by_email.setdefault(customer.email.lower(), customer)
        if customer.domain:
            by_domain.setdefault(customer.domain, customer)
        by_name.setdefault(customer.name.lower(), customer)

    if planned:
        rows = []
        for p in planned:
            row = {"name": p.name}
            if p.email:
                row["email"] = p.email
            if p.domain:
                row["domain"] = p.domain
            rows.append(row)
        created = customer_services.customers_create_bulk(workspace_id=workspace_id, rows=rows)
        for p, customer in zip(planned, created, strict=True):
            p.pk = customer.pk
    for provider_id, customer in assigned.items():
        outcome.customer_ids[provider_id] = customer.pk
    return outcome
