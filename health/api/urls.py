from django.urls import path

from health.api.job_views import BacktestViewSet, ModelFitViewSet
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
    path(
        "health/backtests",
        BacktestViewSet.as_view({"get": "list", "post": "create"}),
        name="health-backtests",
    ),
    path("health/backtests/<str:pk>", BacktestViewSet.as_view({"get": "retrieve"}), name="health-backtest"),
    path("health/model/fit", ModelFitViewSet.as_view({"post": "create"}), name="health-model-fit"),
    path("health/model/fits", ModelFitViewSet.as_view({"get": "list"}), name="health-model-fits"),
    path(
        "health/model/fits/<str:pk>",
        ModelFitViewSet.as_view({"get": "retrieve"}),
        name="health-model-fit-detail",
    ),
    path(
        "health/model/fits/<str:pk>/apply",
        ModelFitViewSet.as_view({"post": "apply"}),
        name="health-model-fit-apply",
    ),
]
