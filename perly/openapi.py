"""Adds what every operation shares to the generated OpenAPI document: the error envelope for
each error status, the rate-limit and request-id headers, and the Idempotency-Key header."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message", "param", "request_id"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "invalid_request_error",
                        "authentication_error",
                        "permission_error",
                        "rate_limit_error",
                        "api_error",
                    ],
                },
                "code": {"type": "string"},
                "message": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "request_id": {"type": "string", "nullable": True},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "param": {"type": "string", "nullable": True},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}

RATE_HEADERS = {
    "X-RateLimit-Limit": ("integer", "Requests (or events) allowed in the current window."),
    "X-RateLimit-Remaining": ("integer", "What is left in the current window."),
    "X-RateLimit-Reset": ("integer", "Unix time (seconds) when the window resets."),
    "X-RateLimit-Resource": ("string", "The bucket: read, write, events or anonymous."),
    "Request-Id": ("string", "This request's id (req_...), also in logs and error bodies."),
}

ERROR_DESCRIPTIONS = {
    "400": "Invalid request: a parameter is missing, unknown or invalid.",
    "401": "Missing, malformed, unknown, revoked or expired API key.",
    "403": "The API key lacks the scope for this action.",
    "404": "No such object in this workspace.",
    "405": "Method not allowed on this path.",
    "409": "Conflict with the current state of a resource, or an idempotent request in flight.",
    "408": "The request body did not arrive in time (see README, Limits).",
    "413": "The request body is too large.",
    "414": "The query string is over 4,096 bytes (see README, Limits).",
    "415": "The request body is not application/json.",
    "429": "Rate limit exceeded; see Retry-After.",
    "500": "Internal error.",
    "503": "A dependency (the database) is unavailable; retry shortly.",
}

_UNAUTHENTICATED_STATUSES = ("429", "500", "503")


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents perly.authentication.ApiKeyAuthentication as an HTTP bearer scheme."""

    target_class = "perly.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pk_live_... or pk_test_...",
            "description": "An API key with the scopes the operation needs.",
        }


def _headers() -> dict:
    return {
        name: {"schema": {"type": kind}, "description": description}
        for name, (kind, description) in RATE_HEADERS.items()
    }


def _require_non_empty(schema: dict) -> None:
    """WorkspaceScopedViewSet refuses an empty query parameter (`?plan=`): say so in the spec."""
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    if target.get("type") == "string" and "enum" not in target:
        target.setdefault("minLength", 1)


def add_conventions(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        public_path = path == "/v1/openapi.json"
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for response in responses.values():
                response.setdefault("headers", {}).update(_headers())
            statuses = _UNAUTHENTICATED_STATUSES if public_path else ERROR_DESCRIPTIONS
            for status in statuses:
                if status in ("405",):
                    continue
                if status in ("408", "413", "415") and method not in ("post", "patch", "put"):
                    continue
                if status == "409" and method != "post" and status not in responses:
                    continue
                existing = responses.get(status, {})
                responses[status] = {
                    "description": existing.get("description") or ERROR_DESCRIPTIONS[status],
                    "headers": _headers(),
                    "content": {"application/json": {"schema": error_ref}},
                }
            for status, response in responses.items():
                # Every error answer is the envelope, including statuses a view documents itself
                # (a 502 with only a description left generated clients returning None).
                if status[0] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": error_ref}}
            for param in operation.get("parameters", []):
                if param.get("in") == "query":
                    _require_non_empty(param.get("schema", {}))
            if method == "post" and not public_path:
                params = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in params):
                    params.append(
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "Makes a retry safe: the first response is replayed for 24 h.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    )
    for name, schema in components.items():
        # Request bodies are strict (StrictSerializerMixin): an unknown field is a 400.
        if name.endswith("Request") and schema.get("type") == "object":
            schema.setdefault("additionalProperties", False)
    return result
