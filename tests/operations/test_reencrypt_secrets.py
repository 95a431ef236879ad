"""`manage.py reencrypt_secrets`: rotating PERLY_ENCRYPTION_KEYS without losing a secret."""

from __future__ import annotations

from contextlib import contextmanager
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import override_settings

from integrations.models import Integration
from perly.crypto import decrypt_json, encrypt_text, reset_keys_cache
from tests.integrations.fakes.stripe import FakeStripe
from webhooks.models import WebhookEndpoint
from webhooks.services import endpoint_secrets

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@contextmanager
def keys(*configured: str):
    with override_settings(PERLY_ENCRYPTION_KEYS=list(configured)):
        reset_keys_cache()
        try:
            yield
        finally:
            reset_keys_cache()


def reencrypt(*args: str) -> str:
    out = StringIO()
    call_command("reencrypt_secrets", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def secrets_under_old_key(client):
    """Two webhook endpoints (one with a rotated secret) and a Stripe integration, under OLD."""
    fake = FakeStripe(api_keys=(STRIPE_KEY,)).start()
    with keys(OLD), override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True, STRIPE_API_BASE=fake.url):
        first = client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/a", "events": ["*"]}).json()
        second = client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/b", "events": ["*"]}).json()
        rotated = client.post(f"/v1/webhooks/{second['id']}/rotate_secret").json()
        integration = client.post(
            "/v1/integrations", {"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}}, format="json"
        ).json()
    fake.stop()
    return {
        first["id"]: [first["secret"]],
        second["id"]: [rotated["secret"], second["secret"]],  # current, then previous
        integration["id"]: {"api_key": STRIPE_KEY},
    }


def test_rotation_reencrypts_every_secret_under_the_new_key(secrets_under_old_key):
    expected = secrets_under_old_key
    with keys(NEW, OLD):
        output = reencrypt()
    assert output.splitlines() == [
        "webhooks.WebhookEndpoint.secret_encrypted: 2 re-encrypted, 0 already current, 0 changed meanwhile, 0 unreadable",
        "webhooks.WebhookEndpoint.previous_secret_encrypted: 1 re-encrypted, 0 already current, 0 changed meanwhile, 0 unreadable",
        "integrations.Integration.credentials_encrypted: 1 re-encrypted, 0 already current, 0 changed meanwhile, 0 unreadable",
        "Total: 4 re-encrypted, 0 already current.",
    ]
    with keys(NEW):  # the old key is gone: everything still reads
        for endpoint in WebhookEndpoint.objects.all():
            assert endpoint_secrets(endpoint) == expected[endpoint.pk]
        integration = Integration.objects.get()
        assert decrypt_json(integration.credentials_encrypted) == expected[integration.pk]


def test_running_it_again_changes_nothing(secrets_under_old_key):
    with keys(NEW, OLD):
        reencrypt()
        before = list(WebhookEndpoint.objects.order_by("pk").values_list("secret_encrypted", flat=True))
        output = reencrypt("--batch-size", "1")
    assert output.splitlines()[-1] == "Total: 0 re-encrypted, 4 already current."
    after = list(WebhookEndpoint.objects.order_by("pk").values_list("secret_encrypted", flat=True))
    assert after == before


def test_dry_run_counts_but_writes_nothing(secrets_under_old_key):
    stored = list(WebhookEndpoint.objects.order_by("pk").values_list("secret_encrypted", flat=True))
    with keys(NEW, OLD):
        output = reencrypt("--dry-run")
    assert output.splitlines()[-1] == "Total: 4 would be re-encrypted, 0 already current."
    assert list(WebhookEndpoint.objects.order_by("pk").values_list("secret_encrypted", flat=True)) == stored


def test_a_value_no_key_can_read_fails_loudly_after_the_rest(secrets_under_old_key):
    lost_key = Fernet.generate_key().decode()
    with keys(lost_key):
        orphan = encrypt_text("whsec_from_a_key_nobody_kept")
    endpoint = WebhookEndpoint.objects.order_by("pk").first()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted=orphan)
    with keys(NEW, OLD), pytest.raises(CommandError) as error:
        reencrypt()
    assert str(error.value) == (
        "1 value(s) could not be decrypted with any key in PERLY_ENCRYPTION_KEYS "
        f"(webhooks.WebhookEndpoint.secret_encrypted pk={endpoint.pk}). "
        "Keep the key that encrypted them in the list and run again."
    )
    with keys(NEW):  # the readable ones were rotated all the same
        assert decrypt_json(Integration.objects.get().credentials_encrypted) == {"api_key": STRIPE_KEY}


def test_bad_batch_size_is_refused(db):
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        reencrypt("--batch-size", "0")
