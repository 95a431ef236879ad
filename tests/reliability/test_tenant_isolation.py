"""Tenant isolation, proved over every /v1 route the URL configuration has.

Workspace A (the attacker's key) sends every method of every object route with workspace B's
real ids and with random well-formed ids: both answers must be the same 404 `resource_missing`
(only the echoed id and the request id differ), and the database must not change. Every list
route is probed through every query parameter with B's values: the answer must equal the one for
a value nobody has, and no B id may appear. A route or parameter this file does not know fails
the test, so a new one gets classified here when it is added.
"""

from __future__ import annotations

import json
from itertools import product

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.views import SpectacularJSONAPIView

from perly import views as perly_views
from perly.ids import new_id
from tests.reliability.conftest import seed_workspace

# Path kwarg -> (resource of the seeded object, its id prefix), chosen by the URL segment before it.
SEGMENT_RESOURCES = {
    "metrics": ("metric", "met"),
    "customers": ("customer", "cus"),
    "signals": ("customer", "cus"),
    "webhooks": ("webhook", "we"),
    "deliveries": ("message", "msg"),
    "integrations": ("integration", "int"),
    "backtests": ("backtest", "bt"),
    "fits": ("fit", "fit"),
}
# List routes (by URL name) -> the resource their pagination cursors name.
LIST_ROUTES = {
    "customer-list": ("customer", "cus"),
    "customer-outcomes": ("outcome", "out"),
    "event-list": ("event", "evt"),
    "integration-list": ("integration", "int"),
    "webhook-endpoint-list": ("webhook", "we"),
    "webhook-delivery-list": ("message", "msg"),
    "health-at-risk": ("customer", "cus"),
    "health-metrics": ("metric", "met"),
    "health-backtests": ("backtest", "bt"),
    "health-model-fits": ("fit", "fit"),
}
# Workspace-wide routes without an id: their answer depends only on the key's workspace.
# event-type-list pages by type name (both seeded workspaces send "login"); its cursor across
# workspaces is tested in tests/events/test_event_types.py.
WORKSPACE_ROUTES = {"health-summary", "health-model", "event-type-list"}
# Routes that start a job over the key's own workspace (202), with no id of anyone's in the body.
JOB_START_ROUTES = {"health-model-fit"}
# Query parameters that carry something identifying of another workspace: probe with B's value.
IDENTIFYING_PARAMS = {
    "starting_after": lambda b, cursor: cursor,
    "ending_before": lambda b, cursor: cursor,
    "customer": lambda b, cursor: b["customer"],
    "email": lambda b, cursor: VICTIM["email"],
    "owner": lambda b, cursor: VICTIM["owner"],
    "external_id": lambda b, cursor: VICTIM["external_id"],
    "domain": lambda b, cursor: VICTIM["domain"],
    "plan": lambda b, cursor: VICTIM["plan"],
    "q": lambda b, cursor: VICTIM["name"],
}
# Values nobody has, shaped like the identifying ones.
NOBODY = {
    "email": "nobody@nowhere.example",
    "owner": "nobody@nowhere.example",
    "external_id": "nobody-ext",
    "domain": "nowhere.example",
    "plan": "nobody-plan",
    "q": "Nobody Such",
}
# Parameters that select by a property every workspace shares (dates, enums, numbers, page size).
NEUTRAL_PARAMS = {
    "limit": "5",
    "created_after": "2000-01-01",
    "created_before": "2100-01-01",
    "churned_after": "2000-01-01",
    "churned_before": "2100-01-01",
    "timestamp_after": "2000-01-01",
    "timestamp_before": "2100-01-01",
    "type": "login",
    "lifecycle_stage": "active",
    "health_status": "unknown",
    "health_score_min": "0",
    "health_score_max": "100",
    "status": "pending",
    "provider": "stripe",
    "threshold": "100",
    "dropped_after": "2000-01-01",
}
# Collection routes whose POST body names another object: B's id must be refused like a missing one.
BODY_REFERENCES = {
    "event-list": ("customer", "cus", lambda ref: {"events": [{"customer_id": ref, "type": "login"}]}),
}
VICTIM = {
    "name": "Victim Holdings",
    "email": "ceo@victim.example",
    "owner": "owner@victim.example",
    "external_id": "victim-ext-1",
    "domain": "victim.example",
    "plan": "victim-plan",
}
NEUTRAL_OVERRIDES = {("integration-list", "status"): "active"}


def v1_routes():
    """(name, pattern, view class or function, http methods) for every route under /v1."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            else:
                yield prefix + str(entry.pattern), entry

    for route, entry in walk(get_resolver().url_patterns):
        if route.lstrip("^").startswith("v1"):
            yield route, entry


def view_of(entry: URLPattern):
    callback = entry.callback
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback


def readable_urls(ids: dict[str, list[str]]):
    """(entry, view class, GET action, url kwargs, url) for every GET route under /v1, each path id
    filled with each of `ids[resource]` (every combination). The spec and the JSON 404 are left out."""
    for route, entry in v1_routes():
        view_cls = view_of(entry)
        actions = dict(getattr(entry.callback, "actions", None) or {})
        if view_cls in (SpectacularJSONAPIView, perly_views.api_not_found) or "get" not in actions:
            continue
        choices = [{}]
        for name in entry.pattern.regex.groupindex:
            segment = _segment_before(entry, name)
            assert segment in SEGMENT_RESOURCES, f"{route}: cannot fill {name!r}; add its segment"
            values = ids[SEGMENT_RESOURCES[segment][0]]
            choices = [{**kwargs, name: value} for kwargs in choices for value in values]
        for kwargs in choices:
            yield entry, view_cls, actions["get"], kwargs, reverse(entry.name, kwargs=kwargs)


def snapshot() -> dict:
    """Every row of every Perly model (the key's last use is bookkeeping, not data)."""
    rows = {}
    for label in ("perly", "customers", "events", "health", "integrations", "webhooks"):
        for model in apps.get_app_config(label).get_models():
            values = list(model._base_manager.order_by("pk").values())
            for row in values:
                row.pop("last_used_at", None)
            rows[model._meta.label] = values
    return rows


def normalized(response, *ids: str) -> tuple[int, str]:
    """Status and body with the request id and the probed ids blanked out."""
    body = response.content.decode()
    if response.status_code >= 400 and body:
        data = response.json()
        data["error"]["request_id"] = "<req>"
        body = json.dumps(data, sort_keys=True)
    for value in ids:
        body = body.replace(value, "<id>")
    return response.status_code, body


def send(api, method: str, url: str, params=None):
    if method in ("get", "head"):
        return getattr(api, method)(url, params or {})
    return getattr(api, method)(url, {}, format="json")


def check_object_route(api, entry, methods, own, foreign, failures):
    kwargs = list(entry.pattern.regex.groupindex)
    choices = []
    for name in kwargs:
        segment = _segment_before(entry, name)
        if segment not in SEGMENT_RESOURCES:
            failures.append(f"{entry.name}: cannot classify path parameter {name!r} (segment {segment!r})")
            return 0
        resource, prefix = SEGMENT_RESOURCES[segment]
        choices.append((name, own[resource], foreign[resource], new_id(prefix)))
    checked = 0
    for picks in product(("own", "foreign", "missing"), repeat=len(choices)):
        if "foreign" not in picks:
            continue
        # The attack uses B's id where picked; its twin puts a missing id there instead.
        attack, twin = {}, {}
        for (name, mine, theirs, missing), pick in zip(choices, picks, strict=True):
            attack[name] = {"own": mine, "foreign": theirs, "missing": missing}[pick]
            twin[name] = missing if pick == "foreign" else attack[name]
        for method in methods:
            got = send(api, method, reverse(entry.name, kwargs=attack))
            expected = send(api, method, reverse(entry.name, kwargs=twin))
            label = f"{method.upper()} {entry.name} {picks}"
            if got.status_code != 404 or (
                method != "head" and got.json()["error"]["code"] != "resource_missing"
            ):
                failures.append(f"{label}: {got.status_code} {got.content[:200]!r}")
            elif normalized(got, *attack.values()) != normalized(expected, *twin.values()):
                failures.append(
                    f"{label}: differs from a missing id: {got.content!r} vs {expected.content!r}"
                )
            checked += 1
    return checked


def _segment_before(entry, kwarg: str) -> str:
    pattern = entry.pattern.regex.pattern
    before = pattern.split(f"(?P<{kwarg}>")[0].rstrip("/")
    return before.rsplit("/", 1)[-1].lstrip("^")


def check_list_route(api, entry, url_kwargs, resource_ids, view_cls, action, foreign_ids, foreign, failures):
    view = view_cls()
    view.action = action
    view.kwargs = url_kwargs
    url = reverse(entry.name, kwargs=url_kwargs)
    cursor_resource, prefix = LIST_ROUTES[entry.name]
    checked = 0
    baseline = api.get(url)
    _assert_no_foreign_ids(baseline, foreign_ids, f"GET {entry.name}", failures)
    for param in sorted(view.allowed_query_params()):
        label = f"GET {entry.name}?{param}"
        if param in IDENTIFYING_PARAMS:
            value = IDENTIFYING_PARAMS[param](foreign, foreign[cursor_resource])
            nobody = NOBODY.get(param) or new_id(prefix if param != "customer" else "cus")
            got, expected = api.get(url, {param: value}), api.get(url, {param: nobody})
            if normalized(got, value) != normalized(expected, nobody):
                failures.append(
                    f"{label}: B's value answers differently: {got.content!r} vs {expected.content!r}"
                )
            _assert_no_foreign_ids(got, foreign_ids - {value}, label, failures)  # echoing it is fine
        elif param in NEUTRAL_PARAMS:
            got = api.get(url, {param: NEUTRAL_OVERRIDES.get((entry.name, param), NEUTRAL_PARAMS[param])})
            if got.status_code != 200:
                failures.append(f"{label}: {got.status_code} {got.content[:200]!r}")
            _assert_no_foreign_ids(got, foreign_ids, label, failures)
        else:
            failures.append(f"{label}: unclassified query parameter; add it to IDENTIFYING or NEUTRAL")
        checked += 1
    return checked


def _assert_no_foreign_ids(response, foreign_ids, label, failures):
    body = response.content.decode()
    leaked = sorted(value for value in foreign_ids if value in body)
    if leaked:
        failures.append(f"{label}: leaks B's {leaked}")


def foreign_identifiers(foreign: dict) -> set[str]:
    return {*foreign.values(), *VICTIM.values()}


def test_no_route_reveals_or_touches_another_workspace(
    workspace, other_workspace, make_client, offline_dns, fake_providers
):
    attacker = make_client(workspace, rate_limit_read=100_000, rate_limit_write=100_000)
    victim = make_client(other_workspace)
    own = seed_workspace(attacker).__dict__
    foreign = seed_workspace(victim, **VICTIM).__dict__
    foreign_ids = foreign_identifiers(foreign)
    before = snapshot()

    failures: list[str] = []
    counts = {"object": 0, "list": 0, "workspace": 0, "special": 0}
    for route, entry in v1_routes():
        view_cls = view_of(entry)
        actions = dict(getattr(entry.callback, "actions", None) or {})
        kwargs = list(entry.pattern.regex.groupindex)
        if view_cls in (SpectacularJSONAPIView, perly_views.api_not_found):
            counts["special"] += 1  # the public spec and the JSON 404 for unknown paths: no data
        elif entry.name in WORKSPACE_ROUTES:
            for method in actions:
                response = send(attacker, method, reverse(entry.name))
                if response.status_code != 200:
                    failures.append(
                        f"{method.upper()} {entry.name}: {response.status_code} {response.content[:200]!r}"
                    )
                _assert_no_foreign_ids(response, foreign_ids, entry.name, failures)
                counts["workspace"] += 1
        elif entry.name in JOB_START_ROUTES:
            response = attacker.post(reverse(entry.name), {}, format="json")
            # 409 names the own workspace's job still queued (tasks run after a commit, never here).
            if response.status_code not in (202, 409):
                failures.append(f"POST {entry.name}: {response.status_code} {response.content[:200]!r}")
            _assert_no_foreign_ids(response, foreign_ids, entry.name, failures)
            counts["workspace"] += 1
        elif kwargs:
            methods = list(actions) + (["head"] if "get" in actions else [])
            counts["object"] += check_object_route(attacker, entry, methods, own, foreign, failures)
            if entry.name in LIST_ROUTES:
                own_kwargs = {
                    name: own[SEGMENT_RESOURCES[_segment_before(entry, name)][0]] for name in kwargs
                }
                counts["list"] += check_list_route(
                    attacker, entry, own_kwargs, own, view_cls, actions["get"], foreign_ids, foreign, failures
                )
        elif entry.name in LIST_ROUTES:
            counts["list"] += check_list_route(
                attacker, entry, {}, own, view_cls, actions["get"], foreign_ids, foreign, failures
            )
            if entry.name in BODY_REFERENCES:
                resource, prefix, body = BODY_REFERENCES[entry.name]
                missing = new_id(prefix)
                url = reverse(entry.name)
                got = attacker.post(url, body(foreign[resource]), format="json")
                expected = attacker.post(url, body(missing), format="json")
                if normalized(got, foreign[resource]) != normalized(expected, missing):
                    failures.append(f"POST {entry.name}: B's {resource} answers differently: {got.content!r}")
                counts["object"] += 1
        else:
            failures.append(f"{route} ({entry.name}): unclassified route; classify it in this test")

    assert not failures, "\n".join(failures)
    assert snapshot() == before
    # Every kind was exercised (a refactor that hides routes from the walk fails here).
    assert counts["object"] >= 35 and counts["list"] >= 35 and counts["workspace"] >= 3, (
        counts,
        [r for r, _ in v1_routes()],
    )
