from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import BasePermission

from perly.middleware import READ_METHODS


class HasScope(BasePermission):
    """Views declare `scope_resource`; reads need `<resource>:read`, the rest `<resource>:write`."""

    def has_permission(self, request, view) -> bool:
        principal = request.auth
        if principal is None:
            raise NotAuthenticated("No API key provided.")
        resource = getattr(view, "scope_resource", None)
        if resource is None:
            return True
        action = "read" if request.method in READ_METHODS else "write"
        if getattr(view, "action_scopes", None) and getattr(view, "action", None) in view.action_scopes:
            action = view.action_scopes[view.action]
        scope = f"{resource}:{action}"
        if not principal.has_scope(scope):
            raise PermissionDenied(f"This API key does not have the '{scope}' scope.")
        return True
