from django.urls import path

from health.api.views import (
    AtRiskViewSet,
    CustomerHealthViewSet,
    HealthModelViewSet,
    HealthSummaryViewSet,
    MetricViewSet,
    SignalViewSet,
)

urlpatterns = [
    path(
        "customers/<str:pk>/health",
        CustomerHealthViewSet.as_view({"get": "retrieve"}),
        name="customer-health",
    ),
    path(
        "customers/<str:pk>/health/history",
        CustomerHealthViewSet.as_view({"get": "history"}),
        name="customer-health-history",
    ),
    path("signals/<str:pk>", SignalViewSet.as_view({"get": "retrieve"}), name="customer-signals"),
    path("health/summary", HealthSummaryViewSet.as_view({"get": "summary"}), name="health-summary"),
    path("health/at-risk", AtRiskViewSet.as_view({"get": "at_risk"}), name="health-at-risk"),
    path("health/metrics", MetricViewSet.as_view({"get": "list", "post": "create"}), name="health-metrics"),
    path(
        "health/metrics/<str:key>",
        MetricViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="health-metric",
    ),
    path(
        "health/metrics/<str:key>/cohorts",
        MetricViewSet.as_view({"get": "cohorts"}),
        name="health-metric-cohorts",
    ),
    path(
        "health/model", HealthModelViewSet.as_view({"get": "retrieve", "put": "update"}), name="health-model"
    ),
]
