"""Salesforce: Accounts, Opportunities and Cases through a thin `requests` client.

OAuth 2.0 client-credentials token call, then SOQL `query` with `nextRecordsUrl` paging. Each
stream orders by SystemModstamp and checkpoints the last stamp of every committed page; the next
read starts at that stamp (inclusive: rows sharing the boundary stamp are re-read, never lost,
and the upsert makes the re-read harmless). `nextRecordsUrl` locators expire, so they are never
persisted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings

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
    translate_http_status,
)
from perly.logging import mask_secrets
from perly.outbound import CheckedUrl, OutboundUrlError, checked_url

API_VERSION = "v60.0"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
TIMEOUT = 30
TRUSTED_DOMAINS = ("salesforce.com", "force.com")
# nextRecordsUrl comes from the response: only a query locator on the instance, nothing else.
_NEXT_RECORDS = re.compile(r"^/services/data/v\d+\.\d+/query/[A-Za-z0-9_-]+$")
UNREACHABLE = "Salesforce could not be reached."

QUERIES = {
    "accounts": "SELECT Id, Name, Website, LastActivityDate, SystemModstamp FROM Account",
    "opportunities": (
        "SELECT Id, AccountId, Name, Amount, StageName, IsClosed, LastActivityDate, SystemModstamp "
        "FROM Opportunity"
    ),
    "cases": "SELECT Id, AccountId, Status, Priority, IsClosed, SystemModstamp FROM Case",
}


def _urls_overridden() -> bool:
    return settings.SALESFORCE_LOGIN_URL.rstrip("/") != DEFAULT_LOGIN_URL


def checked_login_url(url: str) -> CheckedUrl:
    """A `login_url` credential (My Domain, sandbox): an https origin on salesforce.com or
    force.com, as perly.outbound parses it (the parser requests connects with)."""
    return checked_url(
        url.rstrip("/") if isinstance(url, str) else url,
        schemes=("https",),
        trusted_domains=TRUSTED_DOMAINS,
        origin_only=True,
        what="login_url",
    )


def _configured_login_url() -> CheckedUrl:
    # Operator-set (tests, a proxy): http allowed and a path prefix kept, the same syntax rules.
    return checked_url(
        settings.SALESFORCE_LOGIN_URL.rstrip("/"), schemes=("https", "http"), what="SALESFORCE_LOGIN_URL"
    )


def login_url_for(credentials: dict) -> CheckedUrl:
    """The settings decide; a `login_url` credential may only name a Salesforce host, and is
    ignored when the settings point elsewhere (tests, proxies). OutboundUrlError if refused."""
    given = credentials.get("login_url")
    if given and not _urls_overridden():
        return checked_login_url(given)
    return _configured_login_url()


def checked_instance_url(instance_url: object) -> CheckedUrl:
    """The token response's `instance_url`: an https origin on salesforce.com / force.com; with
    SALESFORCE_LOGIN_URL overridden, the overriding origin itself is allowed too."""
    if isinstance(instance_url, str):
        instance_url = instance_url.rstrip("/")
    try:
        return checked_url(
            instance_url,
            schemes=("https",),
            trusted_domains=TRUSTED_DOMAINS,
            origin_only=True,
            what="instance_url",
        )
    except OutboundUrlError:
        if not _urls_overridden():
            raise
    checked = checked_url(instance_url, schemes=("https", "http"), origin_only=True, what="instance_url")
    if checked.origin != _configured_login_url().origin:
        raise OutboundUrlError("instance_url must be on salesforce.com or force.com.", "domain")
    return checked


def _error_reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):  # OAuth errors
        text = body.get("error_description") or body.get("error") or ""
    elif isinstance(body, list) and body and isinstance(body[0], dict):  # REST API errors
        text = f"{body[0].get('errorCode', '')}: {body[0].get('message', '')}".strip(": ")
    else:
        text = response.reason or ""
    return mask_secrets(f"Salesforce answered {response.status_code}: {text or 'no message'}")


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, requests.RequestException):
        # One sentence for every network failure: a TLS error (something listens) and a refused
        # connection (nothing does) must not be told apart, or the error is a port scanner.
        return ProviderRetryable(UNREACHABLE)
    return ProviderError(f"Salesforce request failed: {exc.__class__.__name__}")


def _account(row: dict, version: int) -> Record:
    domain = domain_from_url(row.get("Website"))
    return Record(
        stream="accounts",
        provider_id=row["Id"],
        data={"name": row.get("Name"), "domain": domain, "last_activity": row.get("LastActivityDate")},
        version=version,
        match=AccountMatch(
            name=row.get("Name") or domain or row["Id"], domain=domain, rules=("domain", "name")
        ),
    )


def _opportunity(row: dict, version: int) -> Record:
    return Record(
        stream="opportunities",
        provider_id=row["Id"],
        parent_id=row.get("AccountId"),
        data={
            "amount": row.get("Amount"),
            "stage": row.get("StageName"),
            "closed": bool(row.get("IsClosed")),
            "last_activity": row.get("LastActivityDate"),
        },
        version=version,
    )


def _case(row: dict, version: int) -> Record:
    return Record(
        stream="cases",
        provider_id=row["Id"],
        parent_id=row.get("AccountId"),
        data={
            "status": row.get("Status"),
            "priority": row.get("Priority"),
            "closed": bool(row.get("IsClosed")),
        },
        version=version,
    )


MAPPERS = {"accounts": _account, "opportunities": _opportunity, "cases": _case}


def _stamp_version(stamp: str | None) -> int:
    from datetime import datetime

    if not stamp:
        return 0
    try:
        return int(
            datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("+0000", "+00:00")).timestamp()
        )
    except ValueError:
        return 0


@dataclass
class SalesforceConnector(Connector):
    provider = "salesforce"
    signal_source = "salesforce"

    def __post_init__(self) -> None:
        self.caller = Caller(_translate)
        self.session = requests.Session()
        self.token: str | None = None
        self.instance: CheckedUrl | None = None

    def close(self) -> None:
        self.session.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
        if response.status_code >= 300:
            raise translate_http_status(
                response.status_code, _error_reason(response), response.headers.get("Retry-After")
            )
        return response

    def _authenticate(self) -> None:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.credentials["client_id"],
            "client_secret": self.credentials["client_secret"],
        }
        try:
            login = login_url_for(self.credentials)
        except OutboundUrlError as exc:
            raise ProviderAuthError(f"the login_url is refused ({exc})") from None
        url = f"{login.url.rstrip('/')}/services/oauth2/token"
        try:
            body = self.caller(lambda: self._send("POST", url, data=data)).json()
        except ProviderError as exc:
            if exc.status in (400, 401, 403):  # invalid_client, invalid_grant...
                raise ProviderAuthError(exc.reason, exc.status) from exc
            raise
        try:
            instance = checked_instance_url(body.get("instance_url") if isinstance(body, dict) else None)
        except OutboundUrlError:
            raise ProviderAuthError(
                "Salesforce returned an instance_url outside salesforce.com / force.com."
            ) from None
        self.token, self.instance = body.get("access_token"), instance

    def _get(self, path: str, params: dict | None = None) -> dict:
        if self.token is None:
            self._authenticate()
        if not (path == f"/services/data/{API_VERSION}/query" or _NEXT_RECORDS.match(str(path))):
            # nextRecordsUrl comes from the response: never let it send our token elsewhere.
            raise ProviderError("Salesforce returned an unexpected nextRecordsUrl.")
        try:
            return self.caller(lambda: self._query(path, params)).json()
        except ProviderAuthError as exc:
            if exc.status != 401:
                raise
            self._authenticate()  # the session expired: one fresh token, then give up
            return self.caller(lambda: self._query(path, params)).json()

    def _query(self, path: str, params: dict | None) -> requests.Response:
        # The checked instance origin (re-read after a new token) plus a path checked above.
        url = f"{self.instance.origin}{path}"
        return self._send("GET", url, params=params, headers={"Authorization": f"Bearer {self.token}"})

    def check(self) -> None:
        try:
            self._authenticate()
            self._get(f"/services/data/{API_VERSION}/query", {"q": "SELECT Id FROM Account LIMIT 1"})
        except ProviderAuthError as exc:
            raise CredentialsInvalid(exc.reason) from exc

    def streams(self, cursors: dict[str, dict]) -> list[Stream]:
        return [
            Stream("accounts", self._reader("accounts"), accounts=True),
            Stream("opportunities", self._reader("opportunities")),
            Stream("cases", self._reader("cases")),
        ]

    def _reader(self, stream: str):
        def read(cursor: dict) -> Iterator[Page]:
            since = cursor.get("since")
            soql = QUERIES[stream]
            if since:
                soql += f" WHERE SystemModstamp >= {since}"  # a SOQL datetime literal is unquoted
            soql += " ORDER BY SystemModstamp ASC, Id ASC"
            body = self._get(f"/services/data/{API_VERSION}/query", {"q": soql})
            while True:
                rows = body.get("records") or []
                records = [MAPPERS[stream](row, _stamp_version(row.get("SystemModstamp"))) for row in rows]
                if rows and rows[-1].get("SystemModstamp"):
                    since = _soql_datetime(rows[-1]["SystemModstamp"])
                yield Page(records, {"since": since})
                if body.get("done", True) or not body.get("nextRecordsUrl"):
                    return
                body = self._get(body["nextRecordsUrl"])

        return read


def _soql_datetime(stamp: str) -> str:
    """'2026-01-02T03:04:05.000+0000' -> '2026-01-02T03:04:05.000Z' (SOQL accepts both; Z is URL-safe)."""
    return stamp.replace("+0000", "Z")
