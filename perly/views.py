"""Operational endpoints: liveness, readiness, and the JSON 404 for unknown /v1 routes."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse

from perly import ratelimit
from perly.errors import error_response
from perly.redis_client import get_redis


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "unavailable"
    ready = "unavailable" not in checks.values()
    body = {
        "status": "ok" if ready else "degraded",
        "checks": checks,
        "metrics": dict(ratelimit.metrics),
    }
    return JsonResponse(body, status=200 if ready else 503)


def api_not_found(request, path=""):
    return error_response(
        404, "resource_missing", f"Unrecognized request URL ({request.method}: {request.path})."
    )
