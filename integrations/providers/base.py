"""The connector interface every provider implements, and the retry policy they share.

A connector is built from decrypted credentials. `check()` proves them against the provider
(raising `CredentialsInvalid` with the provider's reason). `streams(cursors)` returns the
streams to read, in order; each stream yields pages of records together with the cursor to
persist once that page is committed, so a crash resumes from the last committed page.

Provider SDK errors are translated into three exceptions: `ProviderAuthError` (401/403: the
integration needs re-authorization and the run stops), `ProviderRetryable` (429, 5xx, network:
retried here with backoff, honouring Retry-After) and `ProviderError` (anything else, or retries
exhausted: the stream fails and the run is partial).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from perly.outbound import OutboundUrlError, checked_url

T = TypeVar("T")


def configured_base_url(setting: str) -> str:
    """A provider base URL from settings (STRIPE_API_BASE, HUBSPOT_API_BASE), through the same
    check as every outbound URL; the SDK is handed the rebuilt URL, never the raw setting."""
    try:
        return checked_url(
            str(getattr(settings, setting)).rstrip("/"), schemes=("https", "http"), what=setting
        ).url
    except OutboundUrlError as exc:
        raise ImproperlyConfigured(str(exc)) from None


class ProviderError(Exception):
    """A provider call failed; `reason` is safe to show (no secrets)."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ProviderAuthError(ProviderError):
    """401/403: the credentials no longer work."""


class ProviderRetryable(ProviderError):
    """429, 5xx or a network error: worth another try after `retry_after` seconds (if given)."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason, status)
        self.retry_after = retry_after


class CredentialsInvalid(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(str(value).strip()))
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


@dataclass
class RequestStats:
    requests_made: int = 0
    rate_limited_retries: int = 0


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with jitter. Retry-After wins when the provider sends it,
    capped so a hostile or broken header cannot park a worker for hours."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_retries=getattr(settings, "INTEGRATIONS_MAX_RETRIES", 5),
            base_delay=getattr(settings, "INTEGRATIONS_RETRY_BASE_SECONDS", 0.5),
            max_delay=getattr(settings, "INTEGRATIONS_RETRY_MAX_SECONDS", 30.0),
            max_retry_after=getattr(settings, "INTEGRATIONS_MAX_RETRY_AFTER_SECONDS", 120.0),
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * (2**attempt))
        return backoff * (0.5 + random.random() / 2)


class Caller:
    """Runs one provider request with the retry policy and counts requests and 429 retries."""

    def __init__(
        self,
        translate: Callable[[Exception], Exception],
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.translate = translate
        self.policy = policy or RetryPolicy.from_settings()
        self.stats = RequestStats()
        self._sleep = sleep

    def __call__(self, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            self.stats.requests_made += 1
            try:
                try:
                    return fn()
                except (ProviderError, CredentialsInvalid):
                    raise
                except Exception as exc:  # SDK-specific errors -> our three kinds
                    raise self.translate(exc) from exc
            except ProviderRetryable as exc:
                if attempt >= self.policy.max_retries:
                    raise ProviderError(
                        f"{exc.reason} (gave up after {attempt + 1} attempts)", exc.status
                    ) from exc
                if exc.status == 429:
                    self.stats.rate_limited_retries += 1
                self._sleep(self.policy.delay(attempt, exc.retry_after))
                attempt += 1


def translate_http_status(status: int, reason: str, retry_after: str | None) -> ProviderError:
    if status in (401, 403):
        return ProviderAuthError(reason, status)
    if status == 429 or status >= 500:
        return ProviderRetryable(reason, status, parse_retry_after(retry_after))
    return ProviderError(reason, status)


@dataclass
class Record:
    """One provider object, trimmed to what Perly uses."""

    stream: str
    provider_id: str
    data: dict[str, Any]
    parent_id: str | None = None
    version: int = 0
    # Set on account-like records: the attributes used to match or create a Perly customer.
    match: AccountMatch | None = None


@dataclass
class AccountMatch:
    name: str | None = None
    email: str | None = None
    domain: str | None = None
    # The order matching is tried in, after an existing link: "email", "email_domain", "domain", "name".
    rules: tuple[str, ...] = ()


@dataclass
class Page:
    records: list[Record]
    cursor: dict[str, Any]


@dataclass
class Stream:
    name: str
    read: Callable[[dict[str, Any]], Iterator[Page]]
    # Account-like streams map records to Perly customers; they run before child streams.
    accounts: bool = False


@dataclass
class Connector:
    """Base class; providers fill in check() and streams()."""

    credentials: dict[str, Any]
    caller: Caller = field(init=False)

    provider = ""
    # Which signal keys this provider owns (its source's signals are replaced as a set).
    signal_source = ""

    def check(self) -> None:
        raise NotImplementedError

    def streams(self, cursors: dict[str, dict[str, Any]]) -> list[Stream]:
        raise NotImplementedError

    def close(self) -> None:
        """Release HTTP sessions."""
