"""Fake HubSpot CRM v3: companies (list + search) and deals (list with company associations).

`Authorization: Bearer <token>`; `properties` as a comma list or repeated; list paging through
`paging.next.after`; search body `{"filterGroups": [{"filters": [{"propertyName", "operator",
"value"}]}], "sorts", "properties", "limit", "after"}` answering `{"total", "results", "paging"}`;
errors `{"status": "error", "message", "correlationId", "category"}`.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime

from tests.integrations.fakes.base import FakeProvider, Request, Response


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class FakeHubSpot(FakeProvider):
    name = "hubspot"

    def __init__(self, tokens=("pat-na1-11111111-2222-3333-4444-555555555555",)):
        super().__init__()
        self.tokens = set(tokens)
        self.companies: list[dict] = []
        self.deals: list[dict] = []
        self._ids = itertools.count(1001)
        self._data_lock = threading.Lock()

    def add_company(self, *, name, domain=None, last_activity=None, modified_ms=None) -> dict:
        now_ms = int(time.time() * 1000)
        company = {
            "id": str(next(self._ids)),
            "properties": {
                "name": name,
                "domain": domain,
                "notes_last_updated": iso_ms(last_activity) if last_activity else None,
                "hs_lastmodifieddate": iso_ms(modified_ms or now_ms),
                "createdate": iso_ms(now_ms - 86400_000),
            },
        }
        with self._data_lock:
            self.companies.append(company)
        return company

    def touch_company(self, company_id: str, **properties) -> None:
        with self._data_lock:
            company = next(c for c in self.companies if c["id"] == company_id)
            company["properties"].update(properties)
            company["properties"]["hs_lastmodifieddate"] = iso_ms(int(time.time() * 1000))

    def add_deal(self, *, company_id, amount, stage="contractsent", closed=False, probability=0.8) -> dict:
        deal = {
            "id": str(next(self._ids)),
            "properties": {
                "dealname": f"Deal {company_id}",
                "amount": str(amount),
                "dealstage": stage,
                "hs_is_closed": "true" if closed else "false",
                "hs_deal_stage_probability": str(probability),
                "hs_lastmodifieddate": iso_ms(int(time.time() * 1000)),
            },
            "company_id": company_id,
        }
        with self._data_lock:
            self.deals.append(deal)
        return deal

    def error_body(self, status: int) -> object:
        messages = {
            401: "Authentication credentials not found.",
            429: "You have reached your secondly limit.",
        }
        category = {401: "INVALID_AUTHENTICATION", 429: "RATE_LIMITS"}.get(status, "INTERNAL_ERROR")
        return {
            "status": "error",
            "message": messages.get(status, "internal error"),
            "correlationId": "fake-correlation",
            "category": category,
        }

    def route(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return Response(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found. This API "
                    "supports OAuth 2.0 authentication.",
                    "correlationId": "fake",
                    "category": "INVALID_AUTHENTICATION",
                },
            )
        if request.method == "GET" and request.path == "/crm/v3/objects/companies":
            return self._list(request, self.companies, "companies")
        if request.method == "POST" and request.path == "/crm/v3/objects/companies/search":
            return self._search(request)
        if request.method == "GET" and request.path == "/crm/v3/objects/deals":
            return self._list(request, self.deals, "deals")
        return Response(404, {"status": "error", "message": "Not found", "category": "OBJECT_NOT_FOUND"})

    @staticmethod
    def _properties(values: list[str]) -> list[str]:
        return [p for value in values for p in value.split(",") if p]

    def _render(self, obj: dict, properties: list[str], associations: list[str] | None = None) -> dict:
        props = {name: obj["properties"].get(name) for name in properties}
        props.update(hs_object_id=obj["id"], hs_lastmodifieddate=obj["properties"]["hs_lastmodifieddate"])
        body = {
            "id": obj["id"],
            "properties": props,
            "createdAt": "2024-01-01T00:00:00.000Z",
            "updatedAt": obj["properties"]["hs_lastmodifieddate"],
            "archived": False,
        }
        if associations and "companies" in associations and obj.get("company_id"):
            body["associations"] = {
                "companies": {"results": [{"id": obj["company_id"], "type": "deal_to_company"}]}
            }
        return body

    def _list(self, request: Request, rows: list[dict], kind: str) -> Response:
        limit = min(int(request.param("limit") or 10), 100)
        properties = self._properties(request.query.get("properties", []))
        associations = self._properties(request.query.get("associations", []))
        with self._data_lock:
            ordered = sorted(rows, key=lambda o: int(o["id"]))
        after = request.param("after")
        if after:
            ordered = [o for o in ordered if int(o["id"]) >= int(after)]
        page, rest = ordered[:limit], ordered[limit:]
        body = {"results": [self._render(o, properties, associations) for o in page]}
        if rest:
            body["paging"] = {
                "next": {"after": rest[0]["id"], "link": f"{self.url}{request.path}?after={rest[0]['id']}"}
            }
        return Response(200, body)

    def _search(self, request: Request) -> Response:
        payload = request.json() or {}
        limit = min(int(payload.get("limit") or 10), 200)
        offset = int(payload.get("after") or 0)
        with self._data_lock:
            rows = list(self.companies)
        for group in payload.get("filterGroups") or []:
            for f in group.get("filters") or []:
                if f.get("propertyName") != "hs_lastmodifieddate" or f.get("operator") not in ("GTE", "GT"):
                    return Response(
                        400,
                        {
                            "status": "error",
                            "message": "unsupported filter in fake",
                            "category": "VALIDATION_ERROR",
                        },
                    )
                bound = int(f["value"])

                def modified(o):
                    return int(
                        datetime.fromisoformat(
                            o["properties"]["hs_lastmodifieddate"].replace("Z", "+00:00")
                        ).timestamp()
                        * 1000
                    )

                rows = [
                    o
                    for o in rows
                    if modified(o) > bound or (f["operator"] == "GTE" and modified(o) == bound)
                ]
        rows.sort(key=lambda o: (o["properties"]["hs_lastmodifieddate"], int(o["id"])))
        page = rows[offset : offset + limit]
        body = {
            "total": len(rows),
            "results": [self._render(o, payload.get("properties") or []) for o in page],
        }
        if offset + limit < len(rows):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return Response(200, body)
