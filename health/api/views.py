from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from customers.models import Customer, LifecycleStage
from health import cohorts, selectors, services
from health.api.params import parse_choice_param, parse_date_param, parse_score_param
from health.api.serializers import (
    AtRiskListSerializer,
    DeletedMetricSerializer,
    HealthModelInputSerializer,
    HealthModelSerializer,
    HealthScoreSerializer,
    HistorySerializer,
    MetricCohortsSerializer,
    MetricCreateSerializer,
    MetricSerializer,
    MetricUpdateSerializer,
    SignalListSerializer,
    SummarySerializer,
    metric_representation,
    model_representation,
)
from health.metrics import KEY_RE
from health.models import HealthModel, Metric
from perly.api import WorkspaceScopedViewSet
from perly.errors import invalid_parameter
from perly.ids import is_valid_id
from perly.pagination import parse_limit
from perly.scopes import embedded

MAX_HISTORY_DAYS = 730
_CUSTOMER_PATH = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="A customer id (cus_...)."
)


class _CustomerScoped(WorkspaceScopedViewSet):
    queryset = Customer.objects.all()
    scope_resource = "health"
    id_prefix = "cus"
    resource_name = "customer"


class CustomerHealthViewSet(_CustomerScoped):
    extra_query_params = ("granularity", "start", "end")

    def allowed_query_params(self) -> set[str]:
        return set(self.extra_query_params) if self.action == "history" else set()

    @extend_schema(
        summary="Retrieve a customer's health score",
        description="The current score with every signal's weight and contribution (they add up to the "
        "score). change_7d / change_30d compare with the snapshots of those days (null if unknown).",
        parameters=[_CUSTOMER_PATH],
        responses={200: HealthScoreSerializer},
    )
    def retrieve(self, request, *args, **kwargs):
        return Response(selectors.customer_health(customer=self.get_object()))

    @extend_schema(
        summary="A customer's score history",
        description="Oldest first. Daily points are the end-of-day snapshots; a weekly point is dated on the "
        "ISO week's Monday and its score is the mean of that week's daily scores. Defaults: the last 90 days "
        "(daily) or 26 weeks (weekly), ending today; at most 730 days.",
        parameters=[
            _CUSTOMER_PATH,
            OpenApiParameter("granularity", OpenApiTypes.STR, enum=["daily", "weekly"], default="daily"),
            OpenApiParameter("start", OpenApiTypes.DATE, description="First day, inclusive (YYYY-MM-DD)."),
            OpenApiParameter(
                "end", OpenApiTypes.DATE, description="Last day, inclusive (default today, UTC)."
            ),
        ],
        responses={200: HistorySerializer},
    )
    def history(self, request, *args, **kwargs):
        params = request.query_params
        granularity = parse_choice_param(params, "granularity", ("daily", "weekly"), "daily")
        start, end = parse_date_param(params, "start"), parse_date_param(params, "end")
        customer = self.get_object()
        end = end or timezone.now().date()
        if start is None:
            if granularity == "daily":
                start = end - timedelta(days=89)
            else:
                start = end - timedelta(days=end.weekday()) - timedelta(weeks=25)
        if start > end:
            raise invalid_parameter("start", "start must be on or before end.")
        if (end - start).days + 1 > MAX_HISTORY_DAYS:
            raise invalid_parameter("start", f"The range may span at most {MAX_HISTORY_DAYS} days.")
        data = selectors.customer_history(customer=customer, granularity=granularity, start=start, end=end)
        return Response({"object": "list", "granularity": granularity, "data": data})


class SignalViewSet(_CustomerScoped):
    @extend_schema(
        summary="List a customer's current signals",
        description="Event signals as of the last scoring, plus the integrations' billing, support and CRM "
        "signals. Absent signals are not listed.",
        parameters=[_CUSTOMER_PATH],
        responses={200: SignalListSerializer},
    )
    def retrieve(self, request, *args, **kwargs):
        return Response({"object": "list", "data": selectors.customer_signals(customer=self.get_object())})


class HealthSummaryViewSet(_CustomerScoped):
    extra_query_params = ("plan", "owner", "lifecycle_stage")
    # An owner is an email on the customer: matching on it reads customer data (perly.scopes).
    param_scopes = {"owner": "customers:read"}

    @extend_schema(
        summary="Summarize the workspace's health",
        description="by_status adds up to total_customers; the distribution's ten buckets (the last one "
        "includes 100) add up to the scored customers. Filters narrow the summary to a segment.",
        parameters=[
            OpenApiParameter("plan", OpenApiTypes.STR),
            OpenApiParameter(
                "owner", OpenApiTypes.EMAIL, description="Needs the customers:read scope too (else 403)."
            ),
            OpenApiParameter("lifecycle_stage", OpenApiTypes.STR, enum=list(LifecycleStage.values)),
        ],
        responses={200: SummarySerializer},
    )
    def summary(self, request, *args, **kwargs):
        params = request.query_params
        stage = params.get("lifecycle_stage")
        if stage is not None and stage not in LifecycleStage.values:
            raise invalid_parameter(
                "lifecycle_stage", f"lifecycle_stage must be one of: {', '.join(LifecycleStage.values)}."
            )
        for name in ("plan", "owner"):
            if name in params and not params[name].strip():
                raise invalid_parameter(name, f"{name} must not be empty.")
        if "owner" in params:
            try:
                validate_email(params["owner"])
            except ValidationError:
                raise invalid_parameter("owner", "owner: Enter a valid email address.") from None
        return Response(
            selectors.health_summary(
                workspace_id=self.workspace_id,
                plan=params.get("plan"),
                owner=params.get("owner"),
                lifecycle_stage=stage,
            )
        )


class AtRiskViewSet(_CustomerScoped):
    extra_query_params = ("threshold", "dropped_after", "limit", "starting_after", "ending_before")

    @extend_schema(
        summary="List at-risk customers",
        description="Customers whose current score is below `threshold` (default: the model's at-risk "
        "threshold), lowest score first, then by id. previous_score is the score 7 days earlier; dropped_at "
        "is when the score last crossed below the threshold, from history (null if it never was above).",
        parameters=[
            OpenApiParameter("threshold", OpenApiTypes.FLOAT, description="0 to 100."),
            OpenApiParameter(
                "dropped_after", OpenApiTypes.DATE, description="Only drops on or after this day."
            ),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 100 (default 10)."),
            OpenApiParameter(
                "starting_after", OpenApiTypes.STR, description="A cus_ id from the previous page."
            ),
            OpenApiParameter("ending_before", OpenApiTypes.STR, description="A cus_ id from the next page."),
        ],
        responses={200: AtRiskListSerializer},
    )
    def at_risk(self, request, *args, **kwargs):
        params = request.query_params
        threshold = parse_score_param(params, "threshold")
        if threshold is None:
            threshold = services.health_model_current(workspace_id=self.workspace_id).at_risk_threshold
        dropped_after = parse_date_param(params, "dropped_after")
        limit = parse_limit(params.get("limit"))
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise invalid_parameter("starting_after", "Pass only one of starting_after and ending_before.")
        cursor_param = "starting_after" if after is not None else "ending_before"
        cursor_id = after if after is not None else before
        cursor = None
        if cursor_id is not None:
            cursor = self._cursor(cursor_param, cursor_id)
        customers, has_more = selectors.at_risk_page(
            workspace_id=self.workspace_id,
            threshold=threshold,
            dropped_after=dropped_after,
            limit=limit,
            cursor=cursor,
            forward=before is None,
        )
        data = selectors.at_risk_rows(customers=customers, threshold=threshold)
        for row in data:  # name, email, external_id only with customers:read (perly.scopes)
            row["customer"] = embedded(request.auth.scopes, "customer", row["customer"])
        return Response({"object": "list", "url": request.path, "has_more": has_more, "data": data})

    def _cursor(self, param: str, customer_id: str) -> tuple[float, str]:
        if not is_valid_id(customer_id, "cus"):
            raise invalid_parameter(param, f"{param} must be a cus_ id from a previous page.")
        cursor = selectors.at_risk_cursor(workspace_id=self.workspace_id, customer_id=customer_id)
        if cursor is None:
            raise invalid_parameter(param, f"{param}: no such at-risk customer: '{customer_id}'.")
        return cursor


class HealthModelViewSet(WorkspaceScopedViewSet):
    queryset = HealthModel.objects.all()
    scope_resource = "health"
    resource_name = "health_model"

    @extend_schema(summary="Retrieve the health model", responses={200: HealthModelSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(model_representation(services.health_model_current(workspace_id=self.workspace_id)))

    @extend_schema(
        summary="Change the health model",
        description="Creates a new model version (weights of keys not named keep their value; thresholds "
        "need 0 <= at_risk < healthy <= 100) and rescores the workspace's customers in a task. Sending the "
        "current values changes nothing.",
        request=HealthModelInputSerializer,
        responses={200: HealthModelSerializer},
    )
    def update(self, request, *args, **kwargs):
        serializer = HealthModelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        thresholds = serializer.validated_data.get("thresholds") or {}
        model, _ = services.health_model_update(
            workspace_id=self.workspace_id,
            weights=serializer.validated_data.get("weights"),
            healthy_threshold=thresholds.get("healthy"),
            at_risk_threshold=thresholds.get("at_risk"),
            created_by=f"api:{request.auth.key_id}",
        )
        return Response(model_representation(model))


_METRIC_PATH = OpenApiParameter(
    "key", OpenApiTypes.STR, OpenApiParameter.PATH, description="A metric key (custom.<name>)."
)


class MetricViewSet(WorkspaceScopedViewSet):
    """Workspace-defined metrics; the logic (validation, versions, rescoring) is health.services."""

    queryset = Metric.objects.all()
    scope_resource = "health"
    resource_name = "metric"

    def allowed_query_params(self) -> set[str]:
        if self.action == "cohorts":
            return {"as_of", "horizon_days", "groups"}
        return super().allowed_query_params()

    def _key(self) -> str:
        key = self.kwargs["key"]
        if not KEY_RE.match(key):
            raise services.metric_missing(key)
        return key

    @extend_schema(
        summary="List the workspace's metrics",
        description="Ordered by key (not newest first); starting_after / ending_before take a key.",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 100 (default 10)."),
            OpenApiParameter("starting_after", OpenApiTypes.STR, description="A metric key."),
            OpenApiParameter("ending_before", OpenApiTypes.STR, description="A metric key."),
        ],
        responses={200: MetricSerializer(many=True)},
    )
    def list(self, request, *args, **kwargs):
        params = request.query_params
        limit = parse_limit(params.get("limit"))
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise invalid_parameter("starting_after", "Pass only one of starting_after and ending_before.")
        rows = Metric.objects.filter(workspace_id=self.workspace_id)
        for name, cursor in (("starting_after", after), ("ending_before", before)):
            if cursor is not None and not rows.filter(key=cursor).exists():
                raise invalid_parameter(name, f"{name}: no such metric: '{cursor}'.")
        if after is not None:
            rows = rows.filter(key__gt=after).order_by("key")
        elif before is not None:
            rows = rows.filter(key__lt=before).order_by("-key")
        else:
            rows = rows.order_by("key")
        page = list(rows[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        if before is not None:
            page.reverse()
        data = [metric_representation(row) for row in page]
        return Response({"object": "list", "url": request.path, "has_more": has_more, "data": data})

    @extend_schema(
        summary="Define a metric",
        description="Makes a new model version that computes it (weight 0 until the model gives it one) and "
        "rescores the workspace in a task. At most 50 metrics per workspace.",
        request=MetricCreateSerializer,
        responses={201: MetricSerializer},
    )
    def create(self, request, *args, **kwargs):
        row, _model = services.metric_create(
            workspace_id=self.workspace_id, data=request.data, created_by=f"api:{request.auth.key_id}"
        )
        return Response(metric_representation(row), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Retrieve a metric", parameters=[_METRIC_PATH], responses={200: MetricSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(
            metric_representation(services.metric_get(workspace_id=self.workspace_id, key=self._key()))
        )

    @extend_schema(
        summary="Change a metric",
        description="The fields sent replace the current ones (null clears one); the result is validated "
        "whole. A change makes a new model version and rescores the workspace; the same values change nothing.",
        parameters=[_METRIC_PATH],
        request=MetricUpdateSerializer,
        responses={200: MetricSerializer},
    )
    def partial_update(self, request, *args, **kwargs):
        row, _model = services.metric_update(
            workspace_id=self.workspace_id,
            key=self._key(),
            data=request.data,
            created_by=f"api:{request.auth.key_id}",
        )
        return Response(metric_representation(row))

    @extend_schema(
        summary="Delete a metric",
        description="A new model version without it. 409 resource_in_use while a ratio or change uses it.",
        parameters=[_METRIC_PATH],
        responses={200: DeletedMetricSerializer},
    )
    def destroy(self, request, *args, **kwargs):
        key = self._key()
        row = services.metric_get(workspace_id=self.workspace_id, key=key)
        services.metric_delete(
            workspace_id=self.workspace_id, key=key, created_by=f"api:{request.auth.key_id}"
        )
        return Response({"id": row.id, "object": "metric", "deleted": True})

    @extend_schema(
        summary="Churn by cohort of a metric",
        description="The customers not churned at the end of `as_of` (those existing then: created by then, "
        "or with an event or signal at or before it), split into `groups` equal-count groups by the metric's "
        "value as of the end of that day (computed from the events as they stood; nothing is written), lowest "
        "first, each with its churn within `horizon_days` after as_of (a churned outcome) and the rate's 95% "
        "Wilson interval. `key` is a workspace metric, a built-in event signal, or `score` for the health "
        "score. Defaults: horizon_days 30 (1-365), groups 10 (2-20), as_of horizon_days ago; as_of at most "
        "730 days back and at least horizon_days in the past.",
        parameters=[
            OpenApiParameter(
                "key", OpenApiTypes.STR, OpenApiParameter.PATH, description="A metric key, or score."
            ),
            OpenApiParameter("as_of", OpenApiTypes.DATE, description="YYYY-MM-DD."),
            OpenApiParameter("horizon_days", OpenApiTypes.INT, description="1 to 365 (default 30)."),
            OpenApiParameter("groups", OpenApiTypes.INT, description="2 to 20 (default 10)."),
        ],
        responses={200: MetricCohortsSerializer},
    )
    def cohorts(self, request, *args, **kwargs):
        key = self.kwargs["key"]
        if not cohorts.metric_known(workspace_id=self.workspace_id, key=key):
            raise services.metric_missing(key)
        as_of, horizon, groups = cohorts.parse_cohort_params(
            request.query_params, today=timezone.now().date()
        )
        return Response(
            cohorts.metric_cohorts(
                workspace_id=self.workspace_id, key=key, as_of=as_of, horizon_days=horizon, groups=groups
            )
        )
