"""Staff pages: workspaces and API keys load for staff, the new key is shown once, revoke works,
and anonymous visitors are sent to the login page."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage

from perly.models import ApiKey


@pytest.mark.parametrize(
    "url",
    ["/admin/", "/admin/perly/workspace/", "/admin/perly/apikey/", "/admin/perly/apikey/add/"],
)
def test_pages_load_for_staff(admin_client, client, url):
    response = admin_client.get(url)
    assert response.status_code == 200


def test_workspace_and_key_detail_pages_load(admin_client, client, workspace):
    assert admin_client.get(f"/admin/perly/workspace/{workspace.pk}/change/").status_code == 200
    response = admin_client.get(f"/admin/perly/apikey/{client.api_key.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert client.api_key.key_hash not in page
    assert client.secret not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/perly/workspace/",
        "/admin/perly/apikey/",
        "/admin/perly/apikey/add/",
        "/admin/customers/customer/",
    ],
)
def test_anonymous_is_sent_to_login(anon_client, url):
    response = anon_client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_non_staff_user_is_refused(django_user_model, anon_client, db):
    user = django_user_model.objects.create_user("pat", password="x-long-password-123")
    anon_client.force_login(user)
    response = anon_client.get("/admin/perly/apikey/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_adding_a_key_shows_it_once_and_it_works(admin_client, workspace, anon_client):
    response = admin_client.post(
        "/admin/perly/apikey/add/",
        {
            "workspace": workspace.pk,
            "name": "from admin",
            "scopes": ["customers:read"],
            "rate_limit_read": "5",
        },
        follow=True,
    )
    assert response.status_code == 200
    shown = re.findall(r"pk_live_[A-Za-z0-9]{32,}", response.content.decode())
    assert len(set(shown)) == 1
    secret = shown[0]
    key = ApiKey.objects.get(name="from admin")
    assert key.scopes == ["customers:read"]
    assert key.rate_limit_read == 5
    # Shown once: the next pages do not repeat it.
    assert secret not in admin_client.get(f"/admin/perly/apikey/{key.pk}/change/").content.decode()
    assert secret not in admin_client.get("/admin/perly/apikey/").content.decode()
    api = anon_client
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    listed = api.get("/v1/customers")
    assert listed.status_code == 200
    assert listed["X-RateLimit-Limit"] == "5"


KEY_PATTERN = re.compile(r"pk_(?:live|test)_[A-Za-z0-9]{32,}")


def cookie_texts(response) -> list[str]:
    """Every cookie the answer sets, raw and, for the messages cookie, decoded: its signed value
    may be compressed, so a plain substring check could miss a secret inside it."""
    texts = []
    for name, morsel in response.cookies.items():
        texts.append(morsel.OutputString())
        if name == CookieStorage.cookie_name and morsel.value:
            decoded = CookieStorage(response.wsgi_request)._decode(morsel.value)
            texts.extend(str(message) for message in decoded or [])
    return texts


def test_a_new_key_never_travels_in_a_cookie(admin_client, workspace, anon_client):
    """Django's message storage is a signed, not encrypted, cookie: the secret must only be in
    the body of the one answer to the add form, never in a cookie or the session."""
    response = admin_client.post(
        "/admin/perly/apikey/add/",
        {"workspace": workspace.pk, "name": "cookie check", "scopes": ["read"]},
    )
    followed = admin_client.get("/admin/perly/apikey/")
    for answer in (response, followed):
        for text in cookie_texts(answer):
            assert not KEY_PATTERN.search(text), text
    assert all(not KEY_PATTERN.search(str(value)) for value in admin_client.session.values())
    # Shown once, on the answer itself, which no cache may keep.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = set(KEY_PATTERN.findall(response.content.decode()))
    assert len(shown) == 1
    assert not KEY_PATTERN.search(followed.content.decode())
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {shown.pop()}")
    assert anon_client.get("/v1/customers").status_code == 200


def test_adding_a_key_without_scopes_is_refused(admin_client, workspace):
    response = admin_client.post("/admin/perly/apikey/add/", {"workspace": workspace.pk, "name": "x"})
    assert response.status_code == 200
    assert not ApiKey.objects.exists()


def test_revoke_action_stops_the_key_at_once(admin_client, client):
    assert client.get("/v1/customers").status_code == 200
    response = admin_client.post(
        "/admin/perly/apikey/",
        {"action": "revoke_keys", "_selected_action": [client.api_key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Revoked 1 key(s)."]
    assert ApiKey.objects.get(pk=client.api_key.pk).revoked_at is not None
    assert client.get("/v1/customers").status_code == 401


def test_editing_a_key_limit_applies_at_once(admin_client, client):
    assert client.get("/v1/customers")["X-RateLimit-Limit"] == "1000"
    key = client.api_key
    response = admin_client.post(
        f"/admin/perly/apikey/{key.pk}/change/",
        {"name": "renamed", "scopes": ["read", "write"], "rate_limit_read": "10"},
    )
    assert response.status_code == 302, response.content
    assert client.get("/v1/customers")["X-RateLimit-Limit"] == "10"


def test_key_list_shows_status(admin_client, client):
    from perly.apikeys import api_key_revoke

    api_key_revoke(key=client.api_key)
    page = admin_client.get("/admin/perly/apikey/").content.decode()
    assert "revoked" in page
