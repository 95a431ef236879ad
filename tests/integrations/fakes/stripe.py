"""Fake Stripe API: /v1/customers, /v1/subscriptions, /v1/invoices, /v1/charges, /v1/events.

Wire format as documented: `Authorization: Bearer sk_...`, form-style query params
(`created[gte]`, `types[0]` / `types[]`, `starting_after`, `limit` 1-100, subscription
`status` defaulting to "not canceled"), list envelopes `{"object": "list", "url", "has_more",
"data"}` newest first, and error bodies `{"error": {"type", "message", "code"}}`.
"""

from __future__ import annotations

import itertools
import threading
import time

from tests.integrations.fakes.base import FakeProvider, Request, Response

RESOURCES = {
    "/v1/customers": "customer",
    "/v1/subscriptions": "subscription",
    "/v1/invoices": "invoice",
    "/v1/charges": "charge",
    "/v1/events": "event",
}


class FakeStripe(FakeProvider):
    name = "stripe"

    def __init__(self, api_keys=("sk_test_4eC39HqLyjWDarjtT1zdp7dc",)):
        super().__init__()
        self.api_keys = set(api_keys)
        self.objects: dict[str, list[dict]] = {kind: [] for kind in RESOURCES.values()}
        self._ids = itertools.count(1)
        self._cache: dict = {}
        self._data_lock = threading.Lock()

    # --- data -------------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):014d}"

    def _add(self, kind: str, obj: dict) -> dict:
        with self._data_lock:
            self.objects[kind].append(obj)
            self._cache.clear()
        return obj

    def add_customer(self, *, email=None, name=None, created=None, id=None) -> dict:
        return self._add(
            "customer",
            {
                "id": id or self._new_id("cus"),
                "object": "customer",
                "email": email,
                "name": name,
                "description": None,
                "created": created or int(time.time()) - 86400,
                "delinquent": False,
                "currency": "usd",
                "livemode": False,
                "metadata": {},
            },
        )

    def add_subscription(
        self,
        customer: str,
        *,
        status="active",
        unit_amount=5000,
        quantity=1,
        interval="month",
        created=None,
        ended_at=None,
        canceled_at=None,
    ) -> dict:
        sub_id = self._new_id("sub")
        price = {
            "id": self._new_id("price"),
            "object": "price",
            "currency": "usd",
            "unit_amount": unit_amount,
            "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
        }
        item = {
            "id": self._new_id("si"),
            "object": "subscription_item",
            "price": price,
            "quantity": quantity,
            "subscription": sub_id,
        }
        return self._add(
            "subscription",
            {
                "id": sub_id,
                "object": "subscription",
                "customer": customer,
                "status": status,
                "created": created or int(time.time()) - 86400,
                "cancel_at_period_end": False,
                # Epoch seconds, null until the subscription is canceled / has ended (Stripe's fields).
                "canceled_at": canceled_at,
                "ended_at": ended_at,
                "currency": "usd",
                "items": {
                    "object": "list",
                    "data": [item],
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription={sub_id}",
                },
            },
        )

    def add_invoice(
        self,
        customer: str,
        *,
        status="paid",
        amount_due=5000,
        amount_remaining=0,
        attempt_count=1,
        due_date=None,
        created=None,
    ) -> dict:
        return self._add(
            "invoice",
            {
                "id": self._new_id("in"),
                "object": "invoice",
                "customer": customer,
                "status": status,
                "amount_due": amount_due,
                "amount_remaining": amount_remaining,
                "attempt_count": attempt_count,
                "attempted": attempt_count > 0,
                "collection_method": "charge_automatically",
                "currency": "usd",
                "due_date": due_date,
                "created": created or int(time.time()) - 86400,
            },
        )

    def add_charge(self, customer: str, *, status="succeeded", amount=5000, created=None) -> dict:
        return self._add(
            "charge",
            {
                "id": self._new_id("ch"),
                "object": "charge",
                "customer": customer,
                "status": status,
                "amount": amount,
                "currency": "usd",
                "failure_code": "card_declined" if status == "failed" else None,
                "created": created or int(time.time()) - 86400,
            },
        )

    def add_event(self, type: str, obj: dict, *, created=None) -> dict:
        return self._add(
            "event",
            {
                "id": self._new_id("evt"),
                "object": "event",
                "type": type,
                "created": created or int(time.time()),
                "data": {"object": dict(obj)},
            },
        )

    def update(self, kind: str, object_id: str, **changes) -> dict:
        """Change an object in place and record the matching event (as Stripe would)."""
        with self._data_lock:
            obj = next(o for o in self.objects[kind] if o["id"] == object_id)
            obj.update(changes)
            self._cache.clear()
        event_type = {"subscription": "customer.subscription.updated"}.get(kind, f"{kind}.updated")
        self.add_event(event_type, obj)
        return obj

    def cancel_subscription(self, subscription_id: str, *, ended_at: int | None = None) -> dict:
        """End it as Stripe does (an immediate cancel, or the end of a period canceled earlier):
        status `canceled`, canceled_at and ended_at set, and a `customer.subscription.deleted`
        event created now."""
        now = int(time.time())
        with self._data_lock:
            obj = next(o for o in self.objects["subscription"] if o["id"] == subscription_id)
            obj.update(status="canceled", canceled_at=obj.get("canceled_at") or now, ended_at=ended_at or now)
            self._cache.clear()
        self.add_event("customer.subscription.deleted", obj, created=now)
        return obj

    # --- HTTP -------------------------------------------------------------------------------------
    def error_body(self, status: int) -> object:
        if status == 429:
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "message": "Too many requests hit the API too quickly.",
                }
            }
        if status == 401:
            return {
                "error": {
                    "type": "invalid_request_error",
                    "message": "Invalid API Key provided: sk_test_****",
                }
            }
        return {"error": {"type": "api_error", "message": "An unknown error occurred."}}

    def route(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if key not in self.api_keys:
            masked = f"{key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}" if key else ""
            return Response(
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Invalid API Key provided: {masked}",
                    }
                },
            )
        kind = RESOURCES.get(request.path)
        if request.method != "GET" or kind is None:
            return Response(
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Unrecognized request URL ({request.method}: {request.path}).",
                    }
                },
            )
        return self._list(request, kind)

    def _filtered(self, request: Request, kind: str) -> tuple[list[dict], dict[str, int]]:
        gte = request.param("created[gte]")
        status = request.param("status")
        types = tuple(sorted(v for k, vs in request.query.items() if k.startswith("types[") for v in vs))
        key = (kind, gte, status, types)
        with self._data_lock:
            cached = self._cache.get(key)
            if cached is None:
                rows = list(self.objects[kind])
                if gte is not None:
                    rows = [o for o in rows if o["created"] >= int(gte)]
                if kind == "subscription" and status != "all":
                    rows = (
                        [o for o in rows if o["status"] == status]
                        if status
                        else [o for o in rows if o["status"] != "canceled"]
                    )
                if types:
                    rows = [o for o in rows if o["type"] in types]
                rows.sort(key=lambda o: (o["created"], o["id"]), reverse=True)  # newest first
                cached = (rows, {o["id"]: i for i, o in enumerate(rows)})
                self._cache[key] = cached
        return cached

    def _list(self, request: Request, kind: str) -> Response:
        limit = int(request.param("limit") or 10)
        if not 1 <= limit <= 100:
            return Response(
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "param": "limit",
                        "message": "Invalid integer: limit must be between 1 and 100.",
                    }
                },
            )
        rows, index = self._filtered(request, kind)
        start = 0
        after = request.param("starting_after")
        if after:
            if after not in index:
                return Response(
                    400,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "param": "starting_after",
                            "message": f"No such object: '{after}'",
                        }
                    },
                )
            start = index[after] + 1
        page = rows[start : start + limit]
        return Response(
            200, {"object": "list", "url": request.path, "has_more": start + limit < len(rows), "data": page}
        )
