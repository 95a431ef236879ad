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

handler404 = "perly.errors.handler404"
handler500 = "perly.errors.handler500"
