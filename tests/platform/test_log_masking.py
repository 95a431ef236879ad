"""Secrets are masked wherever their format appears in a log line, including glued to a word
character (the finding: `/v1/customers/cus_pk_live_<secret>` reached the access log in clear)."""

from __future__ import annotations

import logging
import secrets
import string

import pytest

from perly.logging import mask_secrets

_BASE62 = string.ascii_letters + string.digits


def _base62(n: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(n))


# (the secret's visible prefix, the part that must never be logged)
SECRETS = [
    ("pk_live_", _base62(32)),
    ("pk_test_", _base62(32)),
    ("whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+/0Z="),
    ("sk_live_", _base62(24)),
    ("sk_test_", _base62(24)),
    ("rk_live_", _base62(24)),
    ("pat-na1-", "11111111-2222-3333-4444-555555555555"),
    ("00DFAKE000000000!", "AQ4AQFakeSalesforceToken.0123456789"),
]

# Every way a key reaches a log line glued to, or inside, other text.
CONTEXTS = [
    "{key}",
    "cus_{key}",  # after an underscore
    "abc{key}",  # after letters
    "123{key}",  # after digits
    "Ω{key}",  # after a non-ASCII word character
    "GET /v1/customers/cus_{key} HTTP/1.1",  # inside a path
    "GET /v1/customers/{key}/health HTTP/1.1",
    "GET /v1/events?customer=cus_{key}&limit=10 HTTP/1.1",  # in a query
    "GET /v1/events?q=x{key} HTTP/1.1",
    '{{"id": "cus_{key}", "name": "Initech"}}',  # in JSON
    '{{"note":"{key}"}}',
    "external_id={key}",
    "key:{key}.",
    "({key})",
    "'{key}'",
    "\t{key}\n",
]


@pytest.mark.parametrize(("prefix", "secret"), SECRETS)
@pytest.mark.parametrize("context", CONTEXTS)
def test_a_key_is_masked_whatever_surrounds_it(context, prefix, secret):
    line = context.format(key=prefix + secret)
    masked = mask_secrets(line)
    assert secret not in masked
    assert secret[:8] not in masked
    assert prefix + "***" in masked or prefix[:3] in masked  # the kind stays readable
    assert mask_secrets(masked) == masked  # idempotent


def test_a_percent_encoded_webhook_secret_is_masked():
    secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+/0Z="
    encoded = secret.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert "MfKQ9r8G" not in mask_secrets(f"GET /hooks?secret_hint=whsec_{encoded} HTTP/1.1")


def test_access_log_lines_are_masked_as_they_are_logged(caplog):
    """gunicorn's access log and runserver's request log both go through Python logging, where
    the record factory masks every record of the process."""
    key = "pk_live_" + _base62(32)
    caplog.set_level(logging.INFO)
    logging.getLogger("gunicorn.access").info(
        '%(h)s "%(r)s" %(s)s', {"h": "203.0.113.9", "r": f"GET /v1/customers/cus_{key} HTTP/1.1", "s": "404"}
    )
    logging.getLogger("django.server").warning(  # runserver logs a 4xx as a warning
        '"%s" %s %s', f"GET /v1/customers/cus_{key} HTTP/1.1", 404, 97
    )
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert key[8:] not in text
    assert text.count("cus_pk_live_***") == 2


@pytest.mark.django_db
def test_a_request_for_a_glued_key_never_logs_it(client, caplog):
    key = "pk_live_" + _base62(32)
    caplog.set_level(logging.DEBUG)
    response = client.get(f"/v1/customers/cus_{key}")
    assert response.status_code == 404
    logging.getLogger("perly.careless").warning("lookup of %s failed", f"/v1/customers/cus_{key}")
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert key[8:] not in text
