"""The floor the API is measured against: a bare Django JSON view (same server, same middleware
stack, no auth, no database, no Redis). Mounted only when PERLY_BENCHMARK_BASELINE=1."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import path

_BODY = {
    "id": "cus_00000000000000000000000000",
    "object": "customer",
    "name": "Baseline Co",
    "email": "ops@baseline.example.com",
    "metadata": {},
}


def bare(request):
    return JsonResponse(_BODY)


urlpatterns = [path("__benchmark__/bare", bare)]
