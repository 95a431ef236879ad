"""Backtests and model fits (issue 15): thin views over health.backtests."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from health import backtests
from health.api.job_serializers import (
    BacktestInputSerializer,
    BacktestSerializer,
    ModelFitInputSerializer,
    ModelFitSerializer,
)
from health.api.serializers import HealthModelSerializer, model_representation
from health.models import Backtest, ModelFit
from perly.api import WorkspaceScopedViewSet

_LIST_PARAMS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 100 (default 10)."),
    OpenApiParameter("starting_after", OpenApiTypes.STR, description="An id from a previous page."),
    OpenApiParameter("ending_before", OpenApiTypes.STR, description="An id from a previous page."),
]
_DATES = (
    "Dates: `observation_dates` (at most 52), or `from`/`to`/`every_days` (default 7; at most 52 dates), or "
    "neither: the 12 weekly dates ending horizon_days ago. Each date at least horizon_days (default 30, "
    "1-365) in the past and at most 730 days back. Each date scores every customer not churned by then "
    "(created by then, or with an event or signal at or before it) as of the end of that day, from the events "
    "and signals as they stood; a customer without any signal then is left out. Label: a churn outcome within "
    "horizon_days after the date. Nothing is written."
)


class _JobViewSet(WorkspaceScopedViewSet):
    scope_resource = "health"

    def _list(self, request, represent):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([represent(job) for job in page])


class BacktestViewSet(_JobViewSet):
    queryset = Backtest.objects.all()
    id_prefix = "bt"
    resource_name = "backtest"

    @extend_schema(
        summary="Start a backtest",
        description="Queues a backtest of the current model, or of a draft `model`, and answers 202 with it. "
        + _DATES
        + " One backtest per workspace at a time: 409 `backtest_in_progress` names the running one. "
        "No churn in the window: the backtest fails with error `no_churn` (`no_stayers` when all churned).",
        request=BacktestInputSerializer,
        responses={
            202: BacktestSerializer,
            409: OpenApiResponse(description="A backtest is queued or running."),
        },
    )
    def create(self, request, *args, **kwargs):
        job = backtests.backtest_create(workspace_id=self.workspace_id, data=request.data)
        return Response(backtests.backtest_representation(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="List backtests",
        description="Newest first.",
        parameters=_LIST_PARAMS,
        responses={200: BacktestSerializer(many=True)},
    )
    def list(self, request, *args, **kwargs):
        return self._list(request, backtests.backtest_representation)

    @extend_schema(summary="Retrieve a backtest", responses={200: BacktestSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(backtests.backtest_representation(self.get_object()))


class ModelFitViewSet(_JobViewSet):
    queryset = ModelFit.objects.all()
    id_prefix = "fit"
    resource_name = "model_fit"

    @extend_schema(
        summary="Fit the health model to the workspace's churn",
        description="Queues a fit (a regularised logistic regression of churn within the horizon on the "
        "signals' scores; scikit-learn) and answers 202 with it. "
        + _DATES
        + " `signals`: the keys to fit (default: every signal with data). One fit per workspace at a time "
        "(409 `model_fit_in_progress`).",
        request=ModelFitInputSerializer,
        responses={202: ModelFitSerializer, 409: OpenApiResponse(description="A fit is queued or running.")},
    )
    def create(self, request, *args, **kwargs):
        job = backtests.fit_create(workspace_id=self.workspace_id, data=request.data)
        return Response(backtests.fit_representation(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="List model fits",
        description="Newest first.",
        parameters=_LIST_PARAMS,
        responses={200: ModelFitSerializer(many=True)},
    )
    def list(self, request, *args, **kwargs):
        return self._list(request, backtests.fit_representation)

    @extend_schema(summary="Retrieve a model fit", responses={200: ModelFitSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(backtests.fit_representation(self.get_object()))

    @extend_schema(
        summary="Apply a model fit",
        description="Makes the fit's proposal the next model version (created_by `fit:<id>`; signals not "
        "fitted weigh 0; flipped metrics have their direction reversed), rescores the workspace in a task and "
        "answers 200 with the new model. 409 `fit_not_succeeded` for a fit that did not succeed. "
        "Applied again: the version it made while that is current, else 409 `fit_already_applied`.",
        request=None,
        responses={200: HealthModelSerializer, 409: OpenApiResponse(description="The fit did not succeed.")},
    )
    def apply(self, request, *args, **kwargs):
        fit = self.get_object()
        model = backtests.fit_apply(workspace_id=self.workspace_id, fit_id=fit.pk)
        return Response(model_representation(model))
