"""HubSpot: companies and deals through hubspot-api-client (CRM v3).

Companies: the first pass pages the list endpoint (`after` cursor, explicit `properties`); later
runs search on `hs_lastmodifieddate >= cursor`, ascending, checkpointing the last modification
time of each committed page (a search is capped at 10,000 results, so a long catch-up restarts
the search from that checkpoint). Deals are read in full each run with their company
associations, which the search endpoint does not return.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.companies import PublicObjectSearchRequest
from urllib3.util.retry import Retry

from integrations.matching import domain_from_url
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
SEARCH_RESULT_CAP = 10_000
COMPANY_PROPERTIES = ["name", "domain", "notes_last_updated", "hs_lastmodifieddate"]
DEAL_PROPERTIES = [
    "dealname",
    "amount",
    "dealstage",
    "hs_is_closed",
    "hs_deal_stage_probability",
    "closedate",
]
TIMEOUT = 30


def _ms(value: Any) -> int | None:
    """HubSpot datetimes: ISO 8601 strings (or epoch ms in older properties)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _translate(exc: Exception) -> Exception:
    status = getattr(exc, "status", None)
    if isinstance(exc, urllib3.exceptions.HTTPError) or (status == 0):
        return ProviderRetryable("HubSpot could not be reached.")  # no detail: not a port scanner
    if status is None:
        return ProviderError(f"HubSpot request failed: {exc.__class__.__name__}")
    message = ""
    try:
        message = json.loads(exc.body or b"{}").get("message") or ""
    except (ValueError, TypeError, AttributeError):
        message = ""
    reason = mask_secrets(f"HubSpot answered {status}: {message or exc.reason or 'no message'}")
    headers = {str(k).lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
    return translate_http_status(status, reason, headers.get("retry-after"))


def _company(obj: dict, version: int) -> Record:
    props = obj.get("properties") or {}
    domain = domain_from_url(props.get("domain"))
    return Record(
        stream="companies",
        provider_id=str(obj["id"]),
        data={
            "name": props.get("name"),
            "domain": domain,
            "last_activity_ms": _ms(props.get("notes_last_updated")),
            "modified_ms": _ms(props.get("hs_lastmodifieddate")),
        },
        version=version,
        match=AccountMatch(
            name=props.get("name") or domain or f"HubSpot company {obj['id']}",
            domain=domain,
            rules=("domain", "name"),
        ),
    )


def _deal(obj: dict, version: int) -> Record:
    props = obj.get("properties") or {}
    companies = ((obj.get("associations") or {}).get("companies") or {}).get("results") or []
    amount = props.get("amount")
    probability = props.get("hs_deal_stage_probability")
    return Record(
        stream="deals",
        provider_id=str(obj["id"]),
        parent_id=str(companies[0]["id"]) if companies else None,
        data={
            "name": props.get("dealname"),
            "amount": float(amount) if amount not in (None, "") else None,
            "stage": props.get("dealstage"),
            "closed": str(props.get("hs_is_closed")).lower() == "true",
            "probability": float(probability) if probability not in (None, "") else None,
        },
        version=version,
    )


@dataclass
class HubSpotConnector(Connector):
    provider = "hubspot"
    signal_source = "hubspot"

    def __post_init__(self) -> None:
        self.caller = Caller(_translate)
        # Retries are ours; the SDK's urllib3 pool must not retry (or hide) anything.
        client = HubSpot(
            access_token=self.credentials["access_token"],
            host=configured_base_url("HUBSPOT_API_BASE"),
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
        )
        # Each attribute access builds a new API client: keep one of each for the run.
        self.companies = client.crm.companies.basic_api
        self.companies_search = client.crm.companies.search_api
        self.deals = client.crm.deals.basic_api

    def check(self) -> None:
        try:
            self.caller(lambda: self.companies.get_page(limit=1, _request_timeout=TIMEOUT))
        except ProviderAuthError as exc:
            raise CredentialsInvalid(exc.reason) from exc

    def streams(self, cursors: dict[str, dict]) -> list[Stream]:
        return [Stream("companies", self._read_companies, accounts=True), Stream("deals", self._read_deals)]

    def _read_companies(self, cursor: dict) -> Iterator[Page]:
        if cursor.get("since_ms") is None:
            yield from self._list_companies(cursor)
        else:
            yield from self._search_companies(cursor["since_ms"])

    def _list_companies(self, cursor: dict) -> Iterator[Page]:
        after = cursor.get("after")
        pass_started_ms = cursor.get("pass_started_ms") or int(time.time() * 1000)
        while True:
            kwargs = {"limit": PAGE_SIZE, "properties": COMPANY_PROPERTIES, "_request_timeout": TIMEOUT}
            if after:
                kwargs["after"] = after
            body = self.caller(lambda kw=kwargs: self.companies.get_page(**kw)).to_dict()
            version = int(time.time())
            records = [_company(obj, version) for obj in body.get("results") or []]
            after = (((body.get("paging") or {}).get("next")) or {}).get("after")
            if after:
                yield Page(records, {"after": after, "pass_started_ms": pass_started_ms})
                continue
            yield Page(records, {"since_ms": pass_started_ms - 300_000})
            return

    def _search_companies(self, since_ms: int) -> Iterator[Page]:
        after: str | None = None
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[
                    {
                        "filters": [
                            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(since_ms)}
                        ]
                    }
                ],
                sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                properties=COMPANY_PROPERTIES,
                limit=PAGE_SIZE,
                after=after,
            )
            body = self.caller(
                lambda r=request: self.companies_search.do_search(
                    public_object_search_request=r, _request_timeout=TIMEOUT
                )
            ).to_dict()
            version = int(time.time())
            records = [_company(obj, version) for obj in body.get("results") or []]
            last_modified = max((r.data["modified_ms"] or 0 for r in records), default=0)
            checkpoint = max(since_ms, last_modified)
            after = (((body.get("paging") or {}).get("next")) or {}).get("after")
            yield Page(records, {"since_ms": checkpoint})
            if not after:
                return
            if str(after).isdigit() and int(after) + PAGE_SIZE >= SEARCH_RESULT_CAP and checkpoint > since_ms:
                # Past the search cap: start a new search from the last committed modification.
                since_ms, after = checkpoint, None

    def _read_deals(self, cursor: dict) -> Iterator[Page]:
        after = cursor.get("after")
        while True:
            kwargs = {
                "limit": PAGE_SIZE,
                "properties": DEAL_PROPERTIES,
                "associations": ["companies"],
                "_request_timeout": TIMEOUT,
            }
            if after:
                kwargs["after"] = after
            body = self.caller(lambda kw=kwargs: self.deals.get_page(**kw)).to_dict()
            version = int(time.time())
            records = [_deal(obj, version) for obj in body.get("results") or []]
            after = (((body.get("paging") or {}).get("next")) or {}).get("after")
            yield Page(records, {"after": after})
            if not after:
                return
