from __future__ import annotations

from rest_framework.authentication import BaseAuthentication


class ApiKeyAuthentication(BaseAuthentication):
    """Hands DRF the principal that ApiGatewayMiddleware already authenticated."""

    def authenticate(self, request):
        principal = getattr(request._request, "principal", None)
        if principal is None:
            return None
        return (None, principal)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="perly"'
