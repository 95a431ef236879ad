"""Salesforce: Accounts, Opportunities and Cases through a thin `requests` client.

OAuth 2.0 client-credentials token call, then SOQL `query` with `nextRecordsUrl` paging. Each
stream orders by SystemModstamp and checkpoints the last stamp of every committed page; the next
read starts at that stamp (inclusive: rows sharing the boundary stamp are re-read, never lost,
and the upsert makes the re-read harmless). `nextRecordsUrl` locators expire, so they are never
persisted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

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

API_VERSION = "v60.0"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
TIMEOUT = 30
TRUSTED_SUFFIXES = (".salesforce.com", ".force.com")

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


def trusted_salesforce_url(url: str) -> bool:
    """https on salesforce.com / force.com: the only hosts a token or query may go to."""
    parts = urlsplit(url or "")
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and any(host.endswith(s) or host == s[1:] for s in TRUSTED_SUFFIXES)


def login_url_for(credentials: dict) -> str:
    """The settings decide; a `login_url` credential (My Domain, sandbox) may only name a
    Salesforce host, and is ignored when the settings point elsewhere (tests, proxies)."""
    given = credentials.get("login_url")
    if given and not _urls_overridden():
        return given.rstrip("/")
    return settings.SALESFORCE_LOGIN_URL.rstrip("/")


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
        return ProviderRetryable(f"Salesforce unreachable: {exc.__class__.__name__}")
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
        self.instance_url: str | None = None

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
        url = f"{login_url_for(self.credentials)}/services/oauth2/token"
        try:
            body = self.caller(lambda: self._send("POST", url, data=data)).json()
        except ProviderError as exc:
            if exc.status in (400, 401, 403):  # invalid_client, invalid_grant...
                raise ProviderAuthError(exc.reason, exc.status) from exc
            raise
        instance_url = (body.get("instance_url") or "").rstrip("/")
        if not instance_url or (not _urls_overridden() and not trusted_salesforce_url(instance_url)):
            raise ProviderAuthError("Salesforce returned an instance_url outside salesforce.com / force.com.")
        self.token, self.instance_url = body.get("access_token"), instance_url

    def _get(self, path_or_url: str, params: dict | None = None) -> dict:
        if self.token is None:
            self._authenticate()
        if not path_or_url.startswith("/services/data/"):
            # nextRecordsUrl comes from the response: never let it send our token elsewhere.
            raise ProviderError("Salesforce returned an unexpected nextRecordsUrl.")
        url = urljoin(self.instance_url + "/", path_or_url.lstrip("/"))
        try:
            return self.caller(
                lambda: self._send(
                    "GET", url, params=params, headers={"Authorization": f"Bearer {self.token}"}
                )
            ).json()
        except ProviderAuthError as exc:
            if exc.status != 401:
                raise
            self._authenticate()  # the session expired: one fresh token, then give up
            return self.caller(
                lambda: self._send(
                    "GET", url, params=params, headers={"Authorization": f"Bearer {self.token}"}
                )
            ).json()

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
