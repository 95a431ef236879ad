"""Request-level API machinery: request ids, authentication, rate limits, body limits and
idempotency. It runs for every `/v1` path, before routing, so unknown routes and errors get the
same headers and envelope as everything else."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone

from perly import ratelimit, response_cache
from perly.apikeys import AuthFailure, authenticate_key
from perly.crypto import decrypt_bytes, encrypt_bytes
from perly.errors import error_response, response_for_exception
from perly.models import IdempotencyRecord
from perly.request_context import reset_request_id, set_request_id

logger = logging.getLogger("perly.api")

API_PREFIX = "/v1/"
UNAUTHENTICATED_PATHS = frozenset({"/v1/openapi.json"})
EVENTS_PATH = "/v1/events"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_KEY_MAX = 255
# An in-flight record older than this belongs to a request that died; a retry may take it over.
IDEMPOTENCY_ABANDONED_AFTER = timedelta(minutes=5)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = "req_" + secrets.token_hex(12)
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["Request-Id"] = request_id
        return response


class RequestLimitsMiddleware:
    """Limits every request meets before anything else reads it, on every path: the query
    string's size and parameter count, and the Host header (ALLOWED_HOSTS). Django checks the
    Host only where something asks for it; the API answers some requests (a 401, a cached read)
    before anything does, so it is checked here once for all."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        byte_limit = settings.PERLY_MAX_QUERY_STRING_BYTES
        # WSGI hands the query over as latin-1 text: one character per byte on the wire.
        if len(query) > byte_limit:
            return error_response(
                414,
                "uri_too_long",
                f"The query string is {len(query)} bytes long; at most {byte_limit} are accepted.",
            )
        count_limit = settings.PERLY_MAX_QUERY_PARAMS
        if sum(1 for field in query.split("&") if field) > count_limit:
            return error_response(
                400,
                "parameter_invalid",
                f"Too many query parameters: at most {count_limit} are accepted.",
            )
        request.get_host()  # DisallowedHost: handler400 answers it in the envelope
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A database outage outside DRF views answers 503 in the envelope, not an HTML 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        except (OperationalError, InterfaceError) as exc:
            return response_for_exception(exc)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            return response_for_exception(exception)
        return None


def bucket_for(request) -> str:
    if request.method in READ_METHODS:
        return "read"
    if request.method == "POST" and request.path.rstrip("/") == EVENTS_PATH:
        return "events"
    return "write"


def charge_events(request, count: int) -> ratelimit.RateState:
    """Called by the ingestion view once it knows the batch size: events are counted singly. The
    gateway took the first unit before the body was read (so a bad envelope is not free); this
    takes the rest, all or nothing."""
    principal = request.principal
    state = ratelimit.consume(principal.key_id, "events", principal.limit_for("events"), cost=count - 1)
    # On the Django request the gateway reads its headers from (a DRF Request keeps its own attrs).
    getattr(request, "_request", request).rate_state = state
    return state


def rate_limited_response(state: ratelimit.RateState) -> HttpResponse:
    return error_response(
        429,
        "rate_limit_exceeded",
        f"Rate limit exceeded for the {state.bucket} bucket ({state.limit} per minute). "
        f"Retry after {state.retry_after()} seconds.",
        headers={"Retry-After": str(state.retry_after())},
    )


def _unauthorized(code: str, message: str) -> HttpResponse:
    return error_response(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="perly"'})


class ApiGatewayMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        request.principal = None
        request.rate_state = None
        # The API authenticates with bearer keys, never cookies, so CSRF does not apply to any
        # /v1 path (DRF views are exempt already; this covers plain views such as the JSON 404).
        request._dont_enforce_csrf_checks = True
        response = self._handle(request)
        state = request.rate_state
        if state is None and request.principal is not None:
            bucket = bucket_for(request)
            state = ratelimit.consume(
                request.principal.key_id, bucket, request.principal.limit_for(bucket), cost=0
            )
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        return response

    def _handle(self, request):
        if request.path in UNAUTHENTICATED_PATHS:
            request.rate_state = state = ratelimit.consume_open_path(request)
            if not state.allowed:
                return rate_limited_response(state)
            return self.get_response(request)

        failure = self._authenticate(request)
        if failure is not None:
            return failure

        bucket = bucket_for(request)
        if response_cache.candidate(request):
            return self._cached_read(request, bucket)
        # One unit before the body is read or parsed, for every bucket: a request that will turn
        # out malformed still costs something. Ingestion charges the rest of its batch once parsed.
        principal = request.principal
        request.rate_state = state = ratelimit.consume(principal.key_id, bucket, principal.limit_for(bucket))
        if not state.allowed:
            return rate_limited_response(state)

        if request.method in BODY_METHODS:
            too_large = self._check_body_size(request)
            if too_large is not None:
                return too_large

        idempotency_key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and idempotency_key is not None and self._may_post(request):
            return self._idempotent(request, idempotency_key)
        return self.get_response(request)

    def _cached_read(self, request, bucket: str):
        """A retrieve the response cache may answer: the rate limit and the cache lookup are one
        Redis round trip; a miss runs the view and keeps its response for the next read."""
        request.rate_state, pending, entry = response_cache.consume_and_read(request, bucket)
        if not request.rate_state.allowed:
            return rate_limited_response(request.rate_state)
        if entry is not None:
            return response_cache.decode(entry)
        response = self.get_response(request)
        if pending is not None:
            response_cache.store(pending, response)
        return response

    def _authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            # Nothing was guessed, so nothing is counted: a plain 401 (the headers show the bucket).
            request.rate_state = ratelimit.anonymous_state(request, charge=False)
            return _unauthorized(
                "invalid_api_key", "No API key provided. Send 'Authorization: Bearer pk_live_...'."
            )
        # An address that used up its failed attempts is refused before any lookup, valid key or
        # not: otherwise each further guess would still cost a query, and a hit would still answer.
        request.rate_state = state = ratelimit.anonymous_state(request, charge=False)
        if not state.allowed:
            return rate_limited_response(state)
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            code = "invalid_api_key"
            message = "Malformed Authorization header. Send 'Authorization: Bearer pk_live_...'."
        else:
            try:
                request.principal = authenticate_key(key.strip())
                request.rate_state = None  # the key's own bucket reports from here on
                return None
            except AuthFailure as exc:
                code, message = exc.code, exc.message
        # Failed attempts count against the caller's address, which throttles key guessing.
        request.rate_state = state = ratelimit.anonymous_state(request, charge=True)
        if not state.allowed:
            return rate_limited_response(state)
        return _unauthorized(code, message)

    def _check_body_size(self, request):
        limit = (
            settings.PERLY_MAX_EVENTS_BODY_BYTES
            if request.path.rstrip("/") == EVENTS_PATH
            else settings.PERLY_MAX_BODY_BYTES
        )
        message = f"The request body exceeds the {limit // (1024 * 1024)} MiB limit for this endpoint."
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return error_response(413, "request_too_large", message)
        try:
            if len(request.body) > limit:
                return error_response(413, "request_too_large", message)
        except RequestDataTooBig:
            return error_response(413, "request_too_large", message)
        return None

    @staticmethod
    def _may_post(request) -> bool:
        """Whether the key holds the scope the view will ask for. Without it the view answers 403;
        a replay must not hand it the first response (which may carry a secret shown once)."""
        from perly.permissions import required_scope

        try:
            match = resolve(request.path_info)
        except Resolver404:
            return True
        view = getattr(match.func, "cls", None)
        actions = getattr(match.func, "actions", None) or {}
        scope = required_scope(view, request.method, actions.get("post")) if view else None
        return scope is None or request.principal.has_scope(scope)

    def _idempotent(self, request, key: str):
        if not key.isprintable():  # control characters (NUL would be a database error)
            return error_response(
                400,
                "parameter_invalid",
                "The Idempotency-Key header must not contain control characters.",
                param="Idempotency-Key",
            )
        if not key or len(key) > IDEMPOTENCY_KEY_MAX:
            return error_response(
                400,
                "parameter_invalid",
                f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX} characters.",
                param="Idempotency-Key",
            )
        workspace_id = request.principal.workspace_id
        fingerprint = hashlib.sha256(
            request.method.encode() + b" " + request.path.encode() + b"\n" + request.body
        ).hexdigest()
        record, early = self._claim(workspace_id, key, fingerprint)
        if early is not None:
            return early
        try:
            response = self.get_response(request)
        except BaseException:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            raise
        if response.status_code >= 500 or response.status_code == 429:
            # Nothing was done (or we cannot know): let the client retry with the same key.
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        else:
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            # Encrypted: some first responses carry a secret shown once (a webhook endpoint's).
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                response_status=response.status_code,
                response_body=encrypt_bytes(bytes(response.content)),
            )
        return response

    def _claim(self, workspace_id: str, key: str, fingerprint: str):
        now = timezone.now()
        ttl = timedelta(hours=settings.PERLY_IDEMPOTENCY_TTL_HOURS)
        for _ in range(2):
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        workspace_id=workspace_id, key=key, request_fingerprint=fingerprint
                    )
                return record, None
            except IntegrityError:
                pass
            existing = IdempotencyRecord.objects.filter(workspace_id=workspace_id, key=key).first()
            if existing is None:
                continue
            abandoned = (
                existing.response_status is None and existing.created_at < now - IDEMPOTENCY_ABANDONED_AFTER
            )
            if existing.created_at < now - ttl or abandoned:
                IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
                continue
            if existing.request_fingerprint != fingerprint:
                return None, error_response(
                    400,
                    "idempotency_error",
                    "This Idempotency-Key was already used with a different request body or path. "
                    "Use a new key for a different request.",
                    param="Idempotency-Key",
                )
            if existing.response_status is None:
                return None, error_response(
                    409,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still in progress. Retry after it completes.",
                    param="Idempotency-Key",
                )
            replay = HttpResponse(
                decrypt_bytes(bytes(existing.response_body)) if existing.response_body else b"",
                status=existing.response_status,
                content_type="application/json",
            )
            replay["Idempotent-Replayed"] = "true"
            return None, replay
        return None, error_response(
            409,
            "idempotency_key_in_use",
            "This Idempotency-Key is busy. Retry shortly.",
            param="Idempotency-Key",
        )
