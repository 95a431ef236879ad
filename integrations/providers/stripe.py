"""Stripe: customers, subscriptions, invoices and charges through the official SDK.

The first run (and any run whose event cursor is older than 25 days: Stripe keeps events for
30) reads every object. Later runs read objects created since the last pass (`created[gte]`)
and replay `/v1/events` since then for changes to older objects. Lists are newest first, so a
pass's position is the last id read (`starting_after`); the pass's start time becomes the next
lower bound once the pass completes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import stripe

from integrations.providers.base import (
    AccountMatch,
    Caller,
    Connector,
    CredentialsInvalid,
    Page,
    ProviderAuthError,
    ProviderError,
    ProviderRetryable,
    Record,
    Stream,
    configured_base_url,
    translate_http_status,
)
from perly.logging import mask_secrets

PAGE_SIZE = 100
FULL_REFRESH_AFTER = 25 * 86400  # Stripe keeps events 30 days; refresh fully before the gap.
OVERLAP = 300  # seconds re-read at each pass boundary: clock skew and in-flight writes.
EVENT_TYPES = [
    "customer.created",
    "customer.updated",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "charge.succeeded",
    "charge.failed",
]


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return value


def _customer(obj: dict, version: int) -> Record:
    email = (obj.get("email") or "").strip().lower() or None
    return Record(
        stream="customers",
        provider_id=obj["id"],
        data={"name": obj.get("name"), "email": email, "created": obj.get("created")},
        version=version,
        match=AccountMatch(
            name=obj.get("name") or obj.get("description") or email or obj["id"],
            email=email,
            domain=email.rsplit("@", 1)[1] if email and "@" in email else None,
            rules=("email", "email_domain"),
        ),
    )


def _subscription(obj: dict, version: int) -> Record:
    items = []
    for item in (obj.get("items") or {}).get("data") or []:
        price = item.get("price") or item.get("plan") or {}
        recurring = price.get("recurring") or {}
        items.append(
            {
                "quantity": item.get("quantity") or 1,
                "unit_amount": price.get("unit_amount") or price.get("amount") or 0,
                "currency": price.get("currency"),
                "interval": recurring.get("interval") or price.get("interval") or "month",
                "interval_count": recurring.get("interval_count") or price.get("interval_count") or 1,
            }
        )
    return Record(
        stream="subscriptions",
        provider_id=obj["id"],
        parent_id=_id(obj.get("customer")),
        data={
            "status": obj.get("status"),
            "created": obj.get("created"),
            # When it ended / was canceled (epoch seconds, null while live): churn is dated ended_at.
            "ended_at": obj.get("ended_at"),
            "canceled_at": obj.get("canceled_at"),
            "items": items,
        },
        version=version,
    )


def _invoice(obj: dict, version: int) -> Record:
    keys = ("status", "amount_due", "amount_remaining", "due_date", "attempt_count", "attempted")
    data = {key: obj.get(key) for key in keys}
    data.update(created=obj.get("created"), currency=obj.get("currency"))
    return Record(
        stream="invoices",
        provider_id=obj["id"],
        parent_id=_id(obj.get("customer")),
        data=data,
        version=version,
    )


def _charge(obj: dict, version: int) -> Record:
    data = {key: obj.get(key) for key in ("status", "amount", "created", "currency", "failure_code")}
    return Record(
        stream="charges",
        provider_id=obj["id"],
        parent_id=_id(obj.get("customer")),
        data=data,
        version=version,
    )


MAPPERS: dict[str, Callable[[dict, int], Record]] = {
    "customer": _customer,
    "subscription": _subscription,
    "invoice": _invoice,
    "charge": _charge,
}


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderRetryable("Stripe could not be reached.")  # no detail: not a port scanner
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        reason = mask_secrets(f"Stripe answered {status}: {exc.user_message or 'no message'}")
        headers = {str(k).lower(): v for k, v in (exc.headers or {}).items()}
        if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
            return ProviderAuthError(reason, status or 401)
        return translate_http_status(status or 500, reason, headers.get("retry-after"))
    return ProviderError(f"Stripe request failed: {exc.__class__.__name__}")


@dataclass
class StripeConnector(Connector):
    provider = "stripe"
    signal_source = "stripe"

    def __post_init__(self) -> None:
        self.caller = Caller(_translate)
        # Retries are ours (counted, Retry-After honoured): the SDK's are switched off.
        self.client = stripe.StripeClient(
            self.credentials["api_key"],
            base_addresses={"api": configured_base_url("STRIPE_API_BASE")},
            max_network_retries=0,
        )
        self.full_refresh = True

    def check(self) -> None:
        try:
            self.caller(lambda: self.client.v1.customers.list(params={"limit": 1}))
        except ProviderAuthError as exc:
            raise CredentialsInvalid(exc.reason) from exc

    def _list(self, path: str, params: dict) -> dict:
        # The SDK's raw request (same auth, encoding, errors): the decoded JSON body as is. A
        # service's list() would first build a StripeObject tree of every record on the page,
        # which cost more than the rest of the sync's client side together.
        response = self.caller(lambda: self.client.raw_request("get", path, **params))
        return response.data

    def streams(self, cursors: dict[str, dict]) -> list[Stream]:
        since = (cursors.get("events") or {}).get("since")
        self.full_refresh = since is None or time.time() - since > FULL_REFRESH_AFTER
        return [
            Stream("customers", self._object_reader("/v1/customers", _customer, {}), accounts=True),
            Stream(
                "subscriptions", self._object_reader("/v1/subscriptions", _subscription, {"status": "all"})
            ),
            Stream("invoices", self._object_reader("/v1/invoices", _invoice, {})),
            Stream("charges", self._object_reader("/v1/charges", _charge, {})),
            Stream("events", self._read_events),
        ]

    def _object_reader(self, path: str, mapper: Callable[[dict, int], Record], extra: dict):
        def read(cursor: dict) -> Iterator[Page]:
            if cursor.get("starting_after"):  # resuming a pass interrupted mid-way
                since, pass_started = cursor.get("since"), cursor["pass_started"]
            else:
                since = None if self.full_refresh else cursor.get("since")
                pass_started = int(time.time())
            yield from self._pages(path, mapper, extra, since, pass_started, cursor.get("starting_after"))

        return read

    def _pages(self, path, mapper, extra, since, pass_started, starting_after) -> Iterator[Page]:
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE, **extra}
            if since is not None:
                params["created"] = {"gte": since}
            if starting_after:
                params["starting_after"] = starting_after
            body = self._list(path, params)
            objects = body.get("data") or []
            read_at = int(time.time())  # the version a list read carries (events carry theirs)
            records = [mapper(obj, read_at) for obj in objects]
            if body.get("has_more") and objects:
                starting_after = objects[-1]["id"]
                cursor = {"since": since, "pass_started": pass_started, "starting_after": starting_after}
                yield Page(records, cursor)
                continue
            yield Page(records, {"since": pass_started - OVERLAP, "starting_after": None})
            return

    def _read_events(self, cursor: dict) -> Iterator[Page]:
        if self.full_refresh and not cursor.get("starting_after"):
            # The object streams just read everything; events start from now.
            yield Page([], {"since": int(time.time()) - OVERLAP, "starting_after": None})
            return
        since = cursor.get("since")
        pass_started = cursor.get("pass_started") or int(time.time())
        starting_after = cursor.get("starting_after")
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE, "types": EVENT_TYPES, "created": {"gte": since}}
            if starting_after:
                params["starting_after"] = starting_after
            body = self._list("/v1/events", params)
            events = body.get("data") or []
            records = []
            for event in events:
                obj = (event.get("data") or {}).get("object") or {}
                mapper = MAPPERS.get(obj.get("object"))
                if mapper and obj.get("id"):
                    records.append(mapper(obj, int(event.get("created") or 0)))
            if body.get("has_more") and events:
                starting_after = events[-1]["id"]
                yield Page(
                    records, {"since": since, "pass_started": pass_started, "starting_after": starting_after}
                )
                continue
            yield Page(records, {"since": pass_started - OVERLAP, "starting_after": None})
            return
