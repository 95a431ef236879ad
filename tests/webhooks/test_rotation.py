"""Secret rotation: the old secret keeps signing next to the new one for 24 hours."""

from __future__ import annotations

from datetime import timedelta

import pytest
import standardwebhooks
from django.utils import timezone

from tests.webhooks.conftest import verify
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_rotation_sends_two_signatures_both_valid(client, publish, receiver, endpoint):
    old_secret = endpoint["secret"]
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    assert rotated.json()["previous_secret_expires_at"] is not None

    publish("post", "/v1/customers", {"name": "Initech"})
    (request,) = receiver.received()
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    # Each secret alone verifies the delivery, and each matches one of the two signatures.
    assert verify(new_secret, request) == verify(old_secret, request)
    for secret, signature in zip((new_secret, old_secret), signatures, strict=True):
        only_one = {**request.headers, "webhook-signature": signature}
        standardwebhooks.Webhook(secret).verify(request.body, only_one)


def test_old_secret_stops_signing_after_24_hours(client, publish, receiver, endpoint):
    new_secret = client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret").json()["secret"]
    WebhookEndpoint.objects.filter(pk=endpoint["id"]).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    publish("post", "/v1/customers", {"name": "Initech"})
    (request,) = receiver.received()
    assert " " not in request.headers["webhook-signature"]
    verify(new_secret, request)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verify(endpoint["secret"], request)
    assert client.get(f"/v1/webhooks/{endpoint['id']}").json()["previous_secret_expires_at"] is None


def test_secret_is_stored_encrypted(endpoint):
    row = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert endpoint["secret"] not in row.secret_encrypted
    assert endpoint["secret"].removeprefix("whsec_") not in row.secret_encrypted
