"""One timestamp formatter (perly.timestamps.iso): ISO 8601 UTC with a Z and a four-digit year."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from perly.timestamps import iso, minutes
from tests.events.conftest import post_events

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "fraction", "expected"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), False, "0001-01-01T00:00:00Z"),
        (datetime(9, 2, 3, 4, 5, 6, tzinfo=UTC), False, "0009-02-03T04:05:06Z"),
        (datetime(99, 12, 31, 23, 59, 59, tzinfo=UTC), False, "0099-12-31T23:59:59Z"),
        (datetime(999, 1, 1, 0, 0, 0, 5, tzinfo=UTC), True, "0999-01-01T00:00:00.000005Z"),
        (datetime(999, 1, 1, 0, 0, 0, 5, tzinfo=UTC), False, "0999-01-01T00:00:00Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), True, "9999-12-31T23:59:59.999999Z"),
        (datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=2))), False, "2026-01-01T03:00:00Z"),
        (datetime(1, 1, 1), False, "0001-01-01T00:00:00Z"),  # naive: taken as UTC
        ("0001-01-01 00:00:00+00", False, "0001-01-01T00:00:00Z"),  # as PostgreSQL prints it
        ("2026-11-26 04:27:32.1234+00", True, "2026-11-26T04:27:32.123400Z"),
        ("2026-11-26 04:27:32.1234+00", False, "2026-11-26T04:27:32Z"),
        (None, False, None),
    ],
)
def test_every_year_is_written_with_four_digits(value, fraction, expected):
    assert iso(value, fraction=fraction) == expected


def test_the_admins_minutes_keep_the_four_digit_year():
    assert minutes(datetime(1, 1, 1, 4, 27, 59, tzinfo=UTC)) == "0001-01-01 04:27"


def test_no_module_writes_timestamps_its_own_way():
    """The class of the bug: private copies of `iso` built on strftime("%Y..."), which glibc
    writes unpadded. Every API, webhook and export timestamp goes through perly.timestamps."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".venv", "tests", "benchmarks") or relative == Path("perly/timestamps.py"):
            continue
        text = path.read_text()
        for pattern in (r"strftime\([\"']%Y", r"^def _?iso(_seconds)?\(", r"\.isoformat\(timespec="):
            for match in re.finditer(pattern, text, flags=re.MULTILINE):
                offenders.append(f"{relative}:{text[: match.start()].count(chr(10)) + 1}")
    assert offenders == []


@pytest.mark.django_db
def test_a_year_one_event_reads_back_with_a_four_digit_year(client, workspace):
    from customers.services import customer_create

    customer_create(workspace_id=workspace.id, data={"name": "Acme", "external_id": "acct_1"})
    response = post_events(
        client, [{"customer_external_id": "acct_1", "type": "login", "timestamp": "0001-01-01T00:00:00Z"}]
    )
    assert response.status_code in (200, 201, 202), response.content
    listed = client.get("/v1/events").json()["data"]
    assert [event["timestamp"] for event in listed] == ["0001-01-01T00:00:00Z"]
