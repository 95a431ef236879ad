import os

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from perly import views

v1 = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("", include("customers.api.urls")),
    path("", include("events.api.urls")),
    path("", include("health.api.urls")),
    path("", include("integrations.api.urls")),
    path("", include("webhooks.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    re_path(r"^v1(?P<path>/.*)?$", views.api_not_found),
    path("docs/", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("healthz", views.healthz),
    path("readyz", views.readyz),
    path("admin/", admin.site.urls),
]

# benchmarks/api compares the API with a bare Django view on the same server; that view exists
# only when the benchmark starts the server with this variable, never in production.
if os.environ.get("PERLY_BENCHMARK_BASELINE") == "1":
    urlpatterns.insert(0, path("", include("benchmarks.api.baseline_urls")))

handler400 = "perly.errors.handler400"
handler404 = "perly.errors.handler404"
handler500 = "perly.errors.handler500"
