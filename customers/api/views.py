from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from customers import services
from customers.api.serializers import (
    CustomerSerializer,
    OutcomeSerializer,
    customer_representation,
    outcome_representation,
)
from customers.filtersets import CustomerFilterSet
from customers.models import Customer, Outcome
from customers.selectors import customer_page_representation, customer_rows
from perly.api import WorkspaceScopedViewSet
from perly.errors import not_found_message
from perly.ids import is_valid_id
from perly.pagination import PAGINATION_PARAMS

PAGINATION_PARAMS_SET = frozenset(PAGINATION_PARAMS)

DeletedCustomer = inline_serializer(
    "DeletedCustomer",
    {
        "id": serializers.CharField(),
        "object": serializers.CharField(help_text='Always "customer".'),
        "deleted": serializers.BooleanField(help_text="Always true."),
    },
)
_CONFLICT = OpenApiResponse(
    description="external_id already belongs to another customer of this workspace "
    "(resource_already_exists; the message names it), or an idempotent request is still running."
)


@extend_schema_view(
    list=extend_schema(summary="List customers", description="Newest first. Filters combine with AND."),
    create=extend_schema(
        summary="Create a customer",
        request=CustomerSerializer,
        responses={201: CustomerSerializer, 409: _CONFLICT},
    ),
    retrieve=extend_schema(summary="Retrieve a customer"),
    partial_update=extend_schema(
        summary="Update a customer",
        description='Only the fields sent change. metadata merges: a key set to null or "" is removed.',
        request=CustomerSerializer,
        responses={200: CustomerSerializer, 409: _CONFLICT},
    ),
    destroy=extend_schema(
        summary="Delete a customer and all of its data",
        description="The customer answers 404 at once; its data is purged in the background.",
        responses={200: OpenApiResponse(DeletedCustomer)},
    ),
)
class CustomerViewSet(WorkspaceScopedViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilterSet
    scope_resource = "customers"
    id_prefix = "cus"
    resource_name = "customer"

    # Responses are built by customer_representation directly (the serializer adds nothing on
    # output); a list page reads plain rows, not model instances.
    def list(self, request, *args, **kwargs):
        if request.query_params.keys() <= PAGINATION_PARAMS_SET:
            # No filter: the same SQL for every page of this size and direction, compiled once.
            page = self.paginator.paginate_compiled(
                request,
                self,
                lambda workspace: customer_rows(self.scope_queryset(self._workspace_rows(workspace))),
                self.workspace_id,
            )
        else:
            page = self.paginate_queryset(customer_rows(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(list(customer_page_representation(page)))

    def retrieve(self, request, *args, **kwargs):
        return Response(customer_representation(self.get_object()))

    def create(self, request, *args, **kwargs):
        serializer = CustomerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_create(workspace_id=self.workspace_id, data=serializer.validated_data)
        return Response(customer_representation(customer), status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        customer = self.get_object()
        serializer = CustomerSerializer(customer, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_update(
            workspace_id=self.workspace_id, customer_id=customer.id, data=serializer.validated_data
        )
        return Response(customer_representation(customer))

    def destroy(self, request, *args, **kwargs):
        customer = self.get_object()
        services.customer_delete(workspace_id=self.workspace_id, customer_id=customer.id)
        return Response({"id": customer.id, "object": "customer", "deleted": True})


class CustomerOutcomeViewSet(WorkspaceScopedViewSet):
    """A customer's recorded churns and win-backs, newest `at` first."""

    queryset = Outcome.objects.all()
    serializer_class = OutcomeSerializer
    scope_resource = "customers"
    id_prefix = "out"
    resource_name = "outcome"
    cursor_ordering = ("at", "id")

    def scope_queryset(self, queryset):
        return queryset.filter(customer_id=self.kwargs["pk"])

    @extend_schema(
        summary="List a customer's outcomes",
        description="Every churn and win-back recorded for the customer (API, admin or Stripe), newest `at` "
        "first. A win-back clears churned_at but keeps the churn here.",
        parameters=[
            OpenApiParameter(
                "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="A customer id (cus_...)."
            )
        ],
        responses={200: OutcomeSerializer},
    )
    def list(self, request, *args, **kwargs):
        customer_id = self.kwargs["pk"]
        exists = (
            is_valid_id(customer_id, "cus")
            and Customer.objects.filter(workspace_id=self.workspace_id, pk=customer_id).exists()
        )
        if not exists:
            raise NotFound(not_found_message("customer", customer_id))
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([outcome_representation(outcome) for outcome in page])
