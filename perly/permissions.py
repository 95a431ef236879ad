from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import BasePermission

from perly.errors import ApiError
from perly.middleware import READ_METHODS


class HasScope(BasePermission):
    """Views declare `scope_resource`; reads need `<resource>:read`, the rest `<resource>:write`."""

    def has_permission(self, request, view) -> bool:
        principal = request.auth
        if principal is None:
            raise NotAuthenticated("No API key provided.")
        scope = required_scope(view, request.method, getattr(view, "action", None))
        if scope is not None and not principal.has_scope(scope):
            raise PermissionDenied(f"This API key does not have the '{scope}' scope.")
        # A filter on another resource's fields reads that resource (perly.scopes: the rule).
        for param, param_scope in getattr(view, "param_scopes", {}).items():
            if param in request.query_params and not principal.has_scope(param_scope):
                raise ApiError(
                    403,
                    "insufficient_permissions",
                    f"{param}: filtering by {param} needs the '{param_scope}' scope.",
                    param=param,
                )
        return True


def required_scope(view, method: str, action: str | None) -> str | None:
    """The scope a request needs on `view` (a view or its class); None when it needs none."""
    resource = getattr(view, "scope_resource", None)
    if resource is None:
        return None
    level = "read" if method in READ_METHODS else "write"
    action_scopes = getattr(view, "action_scopes", None) or {}
    return f"{resource}:{action_scopes.get(action, level)}"
