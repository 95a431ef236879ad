"""The error envelope every non-2xx response uses (see README, "Errors")."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from perly.renderers import dumps
from perly.request_context import current_request_id

logger = logging.getLogger("perly.errors")

ERROR_TYPES = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    414: "invalid_request_error",
    415: "invalid_request_error",
    417: "invalid_request_error",
    431: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}

# DRF validation codes -> our stable codes.
_FIELD_CODES = {"required": "parameter_missing"}
_PASS_THROUGH_CODES = {
    "parameter_missing",
    "parameter_invalid",
    "parameter_unknown",
    "parameter_read_only",
    "parameters_exclusive",
    "url_not_allowed",
    "resource_missing",
}


class ApiError(Exception):
    """Raise from anywhere in a request to answer with the error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.errors = errors
        self.headers = headers or {}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(
    status: int,
    code: str,
    message: str,
    param: str | None = None,
    errors: list[dict] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": error_type(status),
        "code": code,
        "message": message,
        "param": param,
        "request_id": current_request_id(),
    }
    if errors:
        error["errors"] = errors
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    param: str | None = None,
    errors: list[dict] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A plain Django response, for middleware and non-DRF views."""
    response = HttpResponse(
        dumps(error_body(status, code, message, param, errors)),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def invalid_parameter(param: str, message: str, code: str = "parameter_invalid") -> ApiError:
    """The 400 for one bad parameter, as DRF's validation errors come out: `param` and the same
    detail in `errors`."""
    return ApiError(
        400, code, message, param=param, errors=[{"param": param, "code": code, "message": message}]
    )


def not_found_message(resource: str, object_id: str) -> str:
    return f"No such {resource}: '{object_id}'."


def flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict]:
    """Turn DRF's nested error detail into the envelope's `errors` list."""
    items: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                items.extend(flatten_validation_errors(value, prefix))
                continue
            name = f"{prefix}[{key}]" if prefix else str(key)
            items.extend(flatten_validation_errors(value, name))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                items.extend(flatten_validation_errors(value, f"{prefix}[{index}]"))
            else:
                items.extend(flatten_validation_errors(value, prefix))
    else:
        raw_code = getattr(detail, "code", None) or "invalid"
        code = (
            raw_code if raw_code in _PASS_THROUGH_CODES else _FIELD_CODES.get(raw_code, "parameter_invalid")
        )
        message = str(detail)
        if prefix and code in ("parameter_missing", "parameter_invalid") and not message.startswith(prefix):
            message = f"{prefix}: {message}"
        items.append({"param": prefix or None, "code": code, "message": message})
    return items


def _from_exception(exc: Exception) -> tuple[int, str, str, str | None, list[dict] | None, dict]:
    """Map an exception to (status, code, message, param, errors, headers)."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message, exc.param, exc.errors, exc.headers
    if isinstance(exc, drf.ValidationError):
        errors = flatten_validation_errors(exc.detail) or [
            {"param": None, "code": "parameter_invalid", "message": "Invalid request."}
        ]
        first = errors[0]
        return 400, first["code"], first["message"], first["param"], errors, {}
    if isinstance(exc, drf.ParseError):
        return 400, "invalid_json", f"The request body is not valid JSON: {exc.detail}", None, None, {}
    if isinstance(exc, drf.UnsupportedMediaType):
        return 415, "unsupported_media_type", "Send request bodies as application/json.", None, None, {}
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return 401, "invalid_api_key", str(exc.detail), None, None, {}
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        detail = getattr(exc, "detail", None) or "This API key lacks the scope for this action."
        return 403, "insufficient_permissions", str(detail), None, None, {}
    if isinstance(exc, drf.NotFound):
        return 404, "resource_missing", str(exc.detail), None, None, {}
    if isinstance(exc, Http404):
        return 404, "resource_missing", "The requested resource does not exist.", None, None, {}
    if isinstance(exc, drf.MethodNotAllowed):
        return 405, "method_not_allowed", str(exc.detail), None, None, {}
    if isinstance(exc, drf.NotAcceptable):
        return 406, "not_acceptable", "This API only serves application/json.", None, None, {}
    if isinstance(exc, drf.Throttled):
        return 429, "rate_limit_exceeded", "Too many requests.", None, None, {}
    if isinstance(exc, TooManyFieldsSent):
        return (
            400,
            "parameter_invalid",
            f"Too many query parameters: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} are read.",
            None,
            None,
            {},
        )
    if isinstance(exc, BadRequest) and isinstance(getattr(exc, "status_code", None), int):
        # Raised below the app with its own answer: the web worker's bounded read (408).
        return exc.status_code, exc.code, str(exc), None, None, {}
    if isinstance(exc, DisallowedHost):
        message = "The Host header names a host this server does not serve."
        return 400, "parameter_invalid", message, "Host", None, {}
    if isinstance(exc, SuspiciousOperation) and not isinstance(exc, RequestDataTooBig):
        return 400, "parameter_invalid", "The request could not be understood.", None, None, {}
    if isinstance(exc, RequestDataTooBig):
        return 413, "request_too_large", "The request body is too large.", None, None, {}
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable: %s", exc)
        return (
            503,
            "service_unavailable",
            "The service is temporarily unavailable. Retry shortly.",
            None,
            None,
            {"Retry-After": "5"},
        )
    if isinstance(exc, drf.APIException):
        return exc.status_code, getattr(exc, "default_code", "api_error"), str(exc.detail), None, None, {}
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
    else:
        logger.exception("unhandled error")
    return (
        500,
        "internal_error",
        "Something went wrong on our end. Retry later; quote the request id if it persists.",
        None,
        None,
        {},
    )


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's exception hook: every error becomes the envelope."""
    status, code, message, param, errors, headers = _from_exception(exc)
    return Response(error_body(status, code, message, param, errors), status=status, headers=headers)


def response_for_exception(exc: Exception) -> HttpResponse:
    """The same mapping for errors raised outside DRF (middleware, Django views)."""
    status, code, message, param, errors, headers = _from_exception(exc)
    return error_response(status, code, message, param, errors, headers)


# Django's handlers for errors outside DRF views (unknown routes, crashes).
def handler404(request, exception=None) -> HttpResponse:
    if not request.path.startswith("/v1"):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return error_response(
        404, "resource_missing", f"Unrecognized request URL ({request.method}: {request.path})."
    )


def handler500(request) -> HttpResponse:
    # Django calls this inside its `except` block, for errors raised by middleware too (the
    # idempotency claim, a key lookup): a database outage there is a 503 envelope, not a 500.
    exc = sys.exc_info()[1]
    if isinstance(exc, (OperationalError, InterfaceError)):
        return response_for_exception(exc)
    if not request.path.startswith("/v1"):
        from django.views.defaults import server_error

        return server_error(request)
    return error_response(
        500,
        "internal_error",
        "Something went wrong on our end. Retry later; quote the request id if it persists.",
    )


def handler400(request, exception=None) -> HttpResponse:
    # Django's answer to BadRequest and SuspiciousOperation raised anywhere, middleware included.
    if exception is not None:
        return response_for_exception(exception)
    return error_response(400, "parameter_invalid", "The request could not be understood.")


def handler403(request, exception=None) -> HttpResponse:
    return error_response(403, "insufficient_permissions", "You are not allowed to do that.")
