"""The key lookup is cached: no query per request, revocation at once here and within 60 s
elsewhere, and last_used_at written at most once a minute."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from perly import apikeys
from perly.apikeys import api_key_revoke
from perly.models import ApiKey


def test_an_authenticated_retrieve_costs_one_query(client, customer, django_assert_num_queries, settings):
    settings.PERLY_RETRIEVE_CACHE_SECONDS = 0  # the customer's own query, not a cached response
    client.get(f"/v1/customers/{customer['id']}")  # warms the key cache and writes last_used_at
    with django_assert_num_queries(1):
        assert client.get(f"/v1/customers/{customer['id']}").status_code == 200


def test_last_used_at_is_written_on_first_use(client):
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at is None
    client.get("/v1/customers")
    used = ApiKey.objects.get(pk=client.api_key.pk).last_used_at
    assert used is not None
    assert timezone.now() - used < timedelta(seconds=10)


def test_last_used_at_is_not_rewritten_within_a_minute(client, django_assert_num_queries):
    client.get("/v1/customers")
    first = ApiKey.objects.get(pk=client.api_key.pk).last_used_at
    with django_assert_num_queries(1):  # the list query only: no key lookup, no UPDATE
        client.get("/v1/customers")
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at == first


def test_last_used_at_is_written_again_after_a_minute(client):
    client.get("/v1/customers")
    old = timezone.now() - timedelta(seconds=61)
    ApiKey.objects.filter(pk=client.api_key.pk).update(last_used_at=old)
    for key_id in list(apikeys._last_used_written):
        apikeys._last_used_written[key_id] -= 61
    client.get("/v1/customers")
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at > old


def test_another_process_writing_recently_prevents_a_second_write(client):
    """The UPDATE is conditional, so several processes write at most once a minute between them."""
    recent = timezone.now() - timedelta(seconds=5)
    ApiKey.objects.filter(pk=client.api_key.pk).update(last_used_at=recent)
    client.get("/v1/customers")
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at == recent


def test_revocation_is_immediate_in_the_revoking_process(client):
    assert client.get("/v1/customers").status_code == 200
    api_key_revoke(key=ApiKey.objects.get(pk=client.api_key.pk))
    assert client.get("/v1/customers").status_code == 401


def test_revocation_by_another_process_applies_when_the_cache_expires(client):
    assert client.get("/v1/customers").status_code == 200
    # Another process revokes: this process's cache still holds the key for a moment.
    ApiKey.objects.filter(pk=client.api_key.pk).update(revoked_at=timezone.now())
    assert client.get("/v1/customers").status_code == 200
    with override_settings(PERLY_API_KEY_CACHE_SECONDS=0):
        assert client.get("/v1/customers").status_code == 401


def test_cache_lifetime_is_under_a_minute():
    from django.conf import settings

    assert 0 < settings.PERLY_API_KEY_CACHE_SECONDS < 60
