"""Fake Salesforce: OAuth client-credentials token endpoint and the REST `query` resource.

Token: POST /services/oauth2/token (form: grant_type=client_credentials, client_id,
client_secret) -> {"access_token", "instance_url", "id", "token_type", "issued_at",
"signature"}; a bad client -> 400 {"error": "invalid_client", "error_description"}. Query:
GET /services/data/vXX.X/query?q=SOQL -> {"totalSize", "done", "nextRecordsUrl"?, "records"}
with `attributes` per record; the locator path serves the next batch. A bad session -> 401
[{"message", "errorCode": "INVALID_SESSION_ID"}]. Understands the SOQL this app sends:
SELECT fields FROM Object [WHERE SystemModstamp >= / > literal] ORDER BY SystemModstamp, Id.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from tests.integrations.fakes.base import FakeProvider, Request, Response

_SOQL = re.compile(
    r"^SELECT (?P<fields>.+?) FROM (?P<object>\w+)"
    r"(?: WHERE SystemModstamp (?P<op>>=|>) (?P<since>\S+))?"
    r"(?: ORDER BY SystemModstamp(?: ASC)?, Id(?: ASC)?)?(?: LIMIT (?P<limit>\d+))?$"
)
_PREFIX = {"Account": "001", "Opportunity": "006", "Case": "500"}


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00"))


class FakeSalesforce(FakeProvider):
    name = "salesforce"

    def __init__(
        self,
        clients=(("3MVG9fakeClientId000000000000", "fake-client-secret-0123456789abcdef"),),
        batch_size: int = 2000,
    ):
        super().__init__()
        self.clients = dict(clients)
        self.batch_size = batch_size
        self.tokens: set[str] = set()
        self.instance_url_override: str | None = None
        self.rows: dict[str, list[dict]] = {"Account": [], "Opportunity": [], "Case": []}
        self._ids = itertools.count(1)
        self._cursors: dict[str, list[dict]] = {}
        self._data_lock = threading.Lock()
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def _next_stamp(self) -> str:
        self._clock += timedelta(seconds=1)
        return stamp(self._clock)

    def _add(self, sobject: str, fields: dict) -> dict:
        with self._data_lock:
            row = {
                "Id": f"{_PREFIX[sobject]}FAKE{next(self._ids):011d}",
                **fields,
                "SystemModstamp": self._next_stamp(),
            }
            self.rows[sobject].append(row)
        return row

    def add_account(self, *, name, website=None, last_activity=None) -> dict:
        return self._add("Account", {"Name": name, "Website": website, "LastActivityDate": last_activity})

    def add_opportunity(
        self, *, account_id, amount=10000, stage="Negotiation", closed=False, last_activity=None
    ):
        return self._add(
            "Opportunity",
            {
                "AccountId": account_id,
                "Name": "Renewal",
                "Amount": amount,
                "StageName": stage,
                "IsClosed": closed,
                "LastActivityDate": last_activity,
            },
        )

    def add_case(self, *, account_id, priority="Medium", closed=False) -> dict:
        return self._add(
            "Case",
            {
                "AccountId": account_id,
                "Status": "Closed" if closed else "New",
                "Priority": priority,
                "IsClosed": closed,
            },
        )

    def touch(self, sobject: str, row_id: str, **fields) -> None:
        with self._data_lock:
            row = next(r for r in self.rows[sobject] if r["Id"] == row_id)
            row.update(fields)
            row["SystemModstamp"] = self._next_stamp()

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def error_body(self, status: int) -> object:
        if status == 401:
            return [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        if status == 429:
            return [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        return [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}]

    def route(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/services/oauth2/token":
            return self._token(request)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return Response(401, self.error_body(401))
        match = re.match(r"^/services/data/v\d+\.\d+/query(?:/(?P<locator>[\w-]+))?$", request.path)
        if request.method != "GET" or not match:
            return Response(
                404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
            )
        if match.group("locator"):
            remaining = self._cursors.pop(match.group("locator"), None)
            if remaining is None:
                return Response(
                    400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]
                )
            return self._batch(request.path.rsplit("/", 1)[0], remaining)
        return self._query(request)

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return Response(
                400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            )
        if self.clients.get(form.get("client_id")) != form.get("client_secret"):
            return Response(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        token = f"00DFAKE!{secrets.token_urlsafe(24)}"
        self.tokens.add(token)
        return Response(
            200,
            {
                "access_token": token,
                "instance_url": self.instance_url_override or self.url,
                "id": f"{self.url}/id/00DFAKE/005FAKE",
                "token_type": "Bearer",
                "issued_at": str(int(datetime.now(tz=UTC).timestamp() * 1000)),
                "signature": "ZmFrZQ==",
            },
        )

    def _query(self, request: Request) -> Response:
        soql = " ".join((request.param("q") or "").split())
        parsed = _SOQL.match(soql)
        if not parsed or parsed.group("object") not in self.rows:
            return Response(
                400, [{"message": f"unsupported SOQL in fake: {soql}", "errorCode": "MALFORMED_QUERY"}]
            )
        fields = [f.strip() for f in parsed.group("fields").split(",")]
        with self._data_lock:
            rows = list(self.rows[parsed.group("object")])
        if parsed.group("since"):
            since = parse_stamp(parsed.group("since"))
            inclusive = parsed.group("op") == ">="
            rows = [
                r
                for r in rows
                if parse_stamp(r["SystemModstamp"]) > since
                or (inclusive and parse_stamp(r["SystemModstamp"]) == since)
            ]
        rows.sort(key=lambda r: (r["SystemModstamp"], r["Id"]))
        if parsed.group("limit"):
            rows = rows[: int(parsed.group("limit"))]
        sobject = parsed.group("object")
        records = [
            {
                "attributes": {
                    "type": sobject,
                    "url": f"{request.path.rsplit('/', 1)[0]}/sobjects/{sobject}/{r['Id']}",
                },
                **{f: r.get(f) for f in fields},
            }
            for r in rows
        ]
        return self._batch(request.path, records, total=len(records))

    def _batch(self, query_path: str, records: list[dict], total: int | None = None) -> Response:
        batch, rest = records[: self.batch_size], records[self.batch_size :]
        body = {"totalSize": total if total is not None else len(records), "done": not rest, "records": batch}
        if rest:
            locator = f"01gFAKE{secrets.token_hex(6)}-{len(batch)}"
            self._cursors[locator] = rest
            body["nextRecordsUrl"] = f"{query_path}/{locator}"
        return Response(200, body)
