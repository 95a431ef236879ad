"""A client generated from the served spec by openapi-python-client (what many API users run)
builds without a warning, has a model for every schema, and works: create, retrieve and 404
round trips for customers and integrations, parsed into the generated models."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.test import override_settings

from perly.apikeys import api_key_create
from perly.services import workspace_create
from tests.integrations.fakes.stripe import FakeStripe

pytestmark = pytest.mark.django_db(transaction=True)

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
BIN = Path(sys.executable).parent
PACKAGE = "perly_generated_client"


def generate(url: str, into: Path) -> subprocess.CompletedProcess:
    # The generator's post-hooks run ruff; without it on PATH it warns "Skipping Integration"
    # (its ruff integration, nothing to do with our Integration model) and --fail-on-warning fails.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(BIN / "openapi-python-client"), "generate", "--url", url, "--meta", "none"]
    command += ["--output-path", str(into / PACKAGE), "--fail-on-warning"]
    return subprocess.run(command, cwd=into, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def sdk(live_server, tmp_path):
    result = generate(f"{live_server.url}/v1/openapi.json", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture
def keys(transactional_db):
    _, mine = api_key_create(workspace=workspace_create(slug="sdk", name="SDK"), scopes="read,write")
    _, theirs = api_key_create(workspace=workspace_create(slug="other", name="Other"), scopes="read,write")
    return mine, theirs


def test_every_schema_has_a_model(sdk, live_server):
    models = importlib.import_module(f"{PACKAGE}.models")
    schemas = requests.get(f"{live_server.url}/v1/openapi.json", timeout=10).json()["components"]["schemas"]
    # An enum of only null is the JSON null itself: the generator types it as None.
    expected = [name for name, schema in schemas.items() if schema.get("enum") != [None]]
    assert [name for name in expected if not hasattr(models, name)] == []
    assert "Integration" in expected and "IntegrationDetail" in expected


def test_customer_round_trip(sdk, live_server, keys):
    from perly_generated_client.api.customers import customers_create, customers_retrieve
    from perly_generated_client.models import Customer, CustomerRequest, Error

    mine, theirs = keys
    client = sdk.AuthenticatedClient(base_url=live_server.url, token=mine)
    created = customers_create.sync_detailed(
        client=client, body=CustomerRequest(name="Initech", email="ops@initech.com", external_id="acct_1")
    )
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, Customer)
    assert created.parsed.additional_properties == {}  # every field of the answer is in the spec

    fetched = customers_retrieve.sync(client=client, id=created.parsed.id)
    assert isinstance(fetched, Customer)
    assert (fetched.id, fetched.name, fetched.email) == (created.parsed.id, "Initech", "ops@initech.com")

    for key, customer_id in ((mine, "cus_00mwxf6u0eqn7thevup28lnaq8"), (theirs, created.parsed.id)):
        missing = customers_retrieve.sync_detailed(
            client=sdk.AuthenticatedClient(base_url=live_server.url, token=key), id=customer_id
        )
        assert missing.status_code == 404
        assert isinstance(missing.parsed, Error)
        assert missing.parsed.error.code == "resource_missing"


def test_integration_round_trip(sdk, live_server, keys):
    from perly_generated_client.api.integrations import integrations_create, integrations_retrieve
    from perly_generated_client.models import (
        Error,
        Integration,
        IntegrationCreateRequest,
        IntegrationCreateRequestCredentials,
        IntegrationDetail,
        ProviderEnum,
        SyncRun,
    )

    mine, theirs = keys
    client = sdk.AuthenticatedClient(base_url=live_server.url, token=mine)
    fake = FakeStripe(api_keys=(STRIPE_KEY,)).start()
    try:
        fake.add_customer(email="ops@initech.com", name="Initech")
        with override_settings(STRIPE_API_BASE=fake.url):
            body = IntegrationCreateRequest.from_dict(
                {"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}}
            )
            assert body.provider == ProviderEnum.STRIPE
            assert isinstance(body.credentials, IntegrationCreateRequestCredentials)  # typed, not Any
            created = integrations_create.sync_detailed(client=client, body=body)
    finally:
        fake.stop()
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, Integration)
    assert created.parsed.additional_properties == {}

    fetched = integrations_retrieve.sync(client=client, id=created.parsed.id)
    assert isinstance(fetched, IntegrationDetail)
    assert isinstance(fetched.last_sync, SyncRun)  # the allOf + nullable wrapper, typed
    assert fetched.last_sync.integration == created.parsed.id
    assert fetched.additional_properties == fetched.last_sync.additional_properties == {}

    for key, integration_id in ((mine, "int_00mwxf6u0eqn7thevup28lnaq8"), (theirs, created.parsed.id)):
        missing = integrations_retrieve.sync_detailed(
            client=sdk.AuthenticatedClient(base_url=live_server.url, token=key), id=integration_id
        )
        assert missing.status_code == 404
        assert isinstance(missing.parsed, Error)
        assert missing.parsed.error.code == "resource_missing"


def test_a_documented_error_status_parses_as_the_envelope(sdk, live_server, keys):
    """A provider that cannot be reached is a 502 in the envelope; the spec must say so, or the
    generated client hands back None."""
    from perly_generated_client.api.integrations import integrations_create
    from perly_generated_client.models import Error, IntegrationCreateRequest

    client = sdk.AuthenticatedClient(base_url=live_server.url, token=keys[0])
    body = IntegrationCreateRequest.from_dict({"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}})
    closed = FakeStripe(api_keys=(STRIPE_KEY,)).start()
    url = closed.url
    closed.stop()  # nothing listens there any more
    with override_settings(
        STRIPE_API_BASE=url, INTEGRATIONS_RETRY_BASE_SECONDS=0.01, INTEGRATIONS_RETRY_MAX_SECONDS=0.05
    ):
        answer = integrations_create.sync_detailed(client=client, body=body)
    assert answer.status_code == 502, answer.content
    assert isinstance(answer.parsed, Error)
    assert answer.parsed.error.type_ == "api_error"
