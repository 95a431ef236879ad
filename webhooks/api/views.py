from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from perly.api import WorkspaceScopedViewSet
from perly.errors import not_found_message
from perly.ids import is_valid_id
from webhooks import services
from webhooks.api.serializers import (
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
    WebhookMessageSerializer,
    endpoint_representation,
    gone_customers,
    message_representation,
)
from webhooks.filtersets import WebhookMessageFilterSet
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

DeletedEndpoint = inline_serializer(
    "DeletedWebhookEndpoint",
    {"id": serializers.CharField(), "object": serializers.CharField(), "deleted": serializers.BooleanField()},
)
ENDPOINT_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The endpoint's id (we_...).")


@extend_schema_view(
    list=extend_schema(
        summary="List webhook endpoints", description="Newest first. Secrets are never listed."
    ),
    retrieve=extend_schema(summary="Retrieve a webhook endpoint", parameters=[ENDPOINT_ID]),
    create=extend_schema(
        summary="Create a webhook endpoint",
        description=(
            "The URL must be an absolute https:// URL (at most 2,048 characters, no credentials) whose host "
            "resolves to public addresses only (400 `url_not_allowed` otherwise). At most 20 endpoints per "
            "workspace. The response carries the signing `secret`, shown only here and by rotate_secret."
        ),
        request=WebhookEndpointSerializer,
        responses={201: WebhookEndpointWithSecretSerializer},
    ),
    partial_update=extend_schema(
        summary="Update a webhook endpoint",
        description="Only the fields sent change. `status: enabled` re-enables an endpoint Perly disabled.",
        parameters=[ENDPOINT_ID],
    ),
    destroy=extend_schema(
        summary="Delete a webhook endpoint",
        parameters=[ENDPOINT_ID],
        responses={200: OpenApiResponse(DeletedEndpoint)},
    ),
)
class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    scope_resource = "webhooks"
    id_prefix = "we"
    resource_name = "webhook endpoint"

    def create(self, request, *args, **kwargs):
        serializer = WebhookEndpointSerializer(data=request.data, creating=True)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(
            workspace_id=self.workspace_id, data=serializer.validated_data
        )
        return Response(endpoint_representation(endpoint, secret=secret), status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        serializer = WebhookEndpointSerializer(endpoint, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(
            workspace_id=self.workspace_id, endpoint_id=endpoint.id, data=serializer.validated_data
        )
        return Response(endpoint_representation(endpoint))

    def destroy(self, request, *args, **kwargs):
        endpoint = self.get_object()
        services.webhook_endpoint_delete(workspace_id=self.workspace_id, endpoint_id=endpoint.id)
        return Response({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})

    @extend_schema(
        summary="Rotate the signing secret",
        description=(
            "Returns a new secret. For 24 hours the previous secret keeps signing too: each delivery then "
            "carries two signatures, space-separated, in webhook-signature."
        ),
        request=None,
        parameters=[ENDPOINT_ID],
        responses={200: WebhookEndpointWithSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate_secret")
    def rotate_secret(self, request, *args, **kwargs):
        endpoint = self.get_object()
        endpoint, secret = services.webhook_endpoint_rotate_secret(endpoint_id=endpoint.id)
        return Response(endpoint_representation(endpoint, secret=secret))

    @extend_schema(
        summary="Send a test event",
        description="Queues a `webhook.test` event to this endpoint only. 409 if it is inactive or disabled.",
        request=None,
        parameters=[ENDPOINT_ID],
        responses={201: WebhookMessageSerializer, 409: OpenApiResponse(description="Endpoint disabled.")},
    )
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request, *args, **kwargs):
        endpoint = self.get_object()
        message = services.webhook_endpoint_send_test(workspace_id=self.workspace_id, endpoint_id=endpoint.id)
        return Response(_fresh_message(message.id, request.auth.scopes), status=status.HTTP_201_CREATED)


def _fresh_message(message_id: str, scopes: frozenset[str]) -> dict:
    """Re-read after commit: with eager tasks the first attempt has already happened."""
    message = WebhookMessage.objects.prefetch_related(_ATTEMPTS).get(pk=message_id)
    gone = gone_customers(message.workspace_id, [message])
    return message_representation(message, scopes=scopes, gone=gone)


_ATTEMPTS = Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("attempt_number"))
WEBHOOK_ID = OpenApiParameter("webhook_id", str, OpenApiParameter.PATH, description="The endpoint (we_...).")
MESSAGE_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The message (msg_...).")


@extend_schema_view(
    list=extend_schema(
        summary="List an endpoint's deliveries",
        description=(
            "The endpoint's messages, newest first, each with its attempts (status code, duration, up to "
            "4 KB of the response, error). Filter by status: pending, delivered or failed."
        ),
        parameters=[WEBHOOK_ID],
    ),
    retrieve=extend_schema(summary="Retrieve a delivery", parameters=[WEBHOOK_ID, MESSAGE_ID]),
)
class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    queryset = WebhookMessage.objects.all()
    serializer_class = WebhookMessageSerializer
    filterset_class = WebhookMessageFilterSet
    scope_resource = "webhooks"
    id_prefix = "msg"
    resource_name = "webhook message"

    def scope_queryset(self, queryset):
        endpoint_id = self.kwargs["webhook_id"]
        exists = is_valid_id(endpoint_id, "we") and (
            WebhookEndpoint.objects.filter(workspace_id=self.workspace_id, pk=endpoint_id).exists()
        )
        if not exists:
            raise NotFound(not_found_message("webhook endpoint", endpoint_id))
        return queryset.filter(endpoint_id=endpoint_id).prefetch_related(_ATTEMPTS)

    def get_serializer(self, *args, **kwargs):
        # A deleted customer's payloads read by reference: one query for the page's customers.
        if args:
            messages = list(args[0]) if kwargs.get("many") else [args[0]]
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["gone_customers"] = gone_customers(self.workspace_id, messages)
        return super().get_serializer(*args, **kwargs)

    @extend_schema(
        summary="Retry a delivery",
        description=(
            "Sends the message again now, with a fresh retry schedule. 409 if the endpoint is inactive or "
            "disabled, or an attempt is in flight."
        ),
        request=None,
        parameters=[WEBHOOK_ID, MESSAGE_ID],
        responses={200: WebhookMessageSerializer, 409: OpenApiResponse(description="Cannot retry now.")},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, *args, **kwargs):
        message = self.get_object()
        services.webhook_message_retry(message_id=message.id)
        return Response(_fresh_message(message.id, request.auth.scopes))
