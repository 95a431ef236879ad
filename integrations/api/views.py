from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from integrations import services
from integrations.api.serializers import (
    IntegrationCreateSerializer,
    IntegrationDetailSerializer,
    IntegrationSerializer,
    SyncRunSerializer,
    integration_detail_representation,
    integration_representation,
    integrations_representation,
)
from integrations.filtersets import IntegrationFilterSet
from integrations.models import Integration
from perly.api import WorkspaceScopedViewSet


@extend_schema_view(
    list=extend_schema(
        summary="List integrations",
        description="Newest first, disconnected ones included. Credentials are never returned, only a hint.",
        responses=IntegrationSerializer(many=True),
    ),
    retrieve=extend_schema(
        summary="Retrieve an integration with its last 20 sync runs", responses=IntegrationDetailSerializer
    ),
    destroy=extend_schema(
        summary="Disconnect an integration",
        description=(
            "Wipes the credentials and stops the schedule; a running sync stops at its next page without "
            "writing more. The history stays readable. Answers 200 with the integration."
        ),
        responses={200: IntegrationSerializer},
    ),
)
class IntegrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    queryset = Integration.objects.all()
    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilterSet
    scope_resource = "integrations"
    id_prefix = "int"
    resource_name = "integration"

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(integrations_representation(page))

    def retrieve(self, request, *args, **kwargs):
        return Response(integration_detail_representation(self.get_object()))

    @extend_schema(
        summary="Connect a provider",
        description=(
            "The credentials are checked with the provider first: rejected ones get 400 "
            "`integration_credentials_invalid` with the provider's reason, and nothing is stored. One live "
            "integration per provider per workspace (else 409 `resource_already_exists`). An initial sync "
            "starts at once."
        ),
        request=IntegrationCreateSerializer,
        responses={
            201: IntegrationSerializer,
            502: OpenApiResponse(description="The provider could not be reached to check the credentials."),
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = IntegrationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        integration = services.integration_create(
            workspace_id=self.workspace_id,
            provider=data["provider"],
            credentials=data["credentials"],
            config_data=data["config"],
        )
        return Response(integration_representation(integration), status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        integration = self.get_object()
        integration = services.integration_disconnect(
            workspace_id=self.workspace_id, integration_id=integration.pk
        )
        return Response(integration_representation(integration))

    @extend_schema(
        summary="Start a sync now",
        description=(
            "Queues a manual sync and answers 202 with the run. 409 `sync_in_progress` when a run is already "
            "queued or running (the message names it); 400 `integration_disconnected` for a disconnected one."
        ),
        request=None,
        responses={
            202: SyncRunSerializer,
            409: OpenApiResponse(description="A sync is already queued or running."),
        },
    )
    @action(detail=True, methods=["post"], url_path="sync")
    def sync(self, request, *args, **kwargs):
        integration = self.get_object()
        run = services.sync_run_request(workspace_id=self.workspace_id, integration_id=integration.pk)
        return Response(run, status=status.HTTP_202_ACCEPTED)
