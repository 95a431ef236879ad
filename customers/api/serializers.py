from __future__ import annotations

import re
from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.external_ids import MAX_LENGTH as MAX_EXTERNAL_ID_LENGTH
from customers.external_ids import normalize_external_id
from customers.models import Customer, HealthStatus, LifecycleStage, Outcome, OutcomeKind, OutcomeSource
from perly.api import MetadataField, StrictSerializerMixin
from perly.timestamps import iso

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class HealthSummarySerializer(serializers.Serializer):
    score = serializers.FloatField(allow_null=True, help_text="0 to 100.")
    status = serializers.ChoiceField(choices=HealthStatus.choices)
    computed_at = serializers.DateTimeField(allow_null=True)


class CustomerSerializer(StrictSerializerMixin, serializers.Serializer):
    """A customer: the input of create and update, and (via `customer_representation`) the output."""

    id = serializers.CharField(read_only=True, help_text="cus_...")
    object = serializers.CharField(read_only=True, help_text='Always "customer".')
    name = serializers.CharField(max_length=200, trim_whitespace=True)
    email = serializers.EmailField(max_length=254, allow_null=True, required=False)
    domain = serializers.CharField(max_length=253, allow_null=True, required=False)
    external_id = serializers.CharField(
        max_length=255,
        allow_null=True,
        required=False,
        help_text="Your own id; unique in the workspace. Compared after Unicode NFC and trimming "
        "surrounding whitespace, and stored that way.",
    )
    plan = serializers.CharField(max_length=100, allow_null=True, required=False)
    owner = serializers.EmailField(
        max_length=254, allow_null=True, required=False, help_text="The account owner's email."
    )
    lifecycle_stage = serializers.ChoiceField(
        choices=LifecycleStage.choices,
        allow_null=True,
        required=False,
        help_text="`churned` without a churned_at stamps churned_at now; leaving `churned` is a win-back "
        "(churned_at cleared, a `reactivated` outcome recorded).",
    )
    churned_at = serializers.DateTimeField(
        allow_null=True,
        required=False,
        help_text="When the customer churned, null if not churned. May be in the past (imports), never in the "
        "future. Setting it sets lifecycle_stage `churned`; null is a win-back. Every change is kept in "
        "/v1/customers/:id/outcomes.",
    )
    metadata = MetadataField(required=False)
    health = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(HealthSummarySerializer(allow_null=True, help_text="Null until first scored."))
    def get_health(self, customer):
        return health_summary(customer)

    def validate_domain(self, value):
        if value is None:
            return value
        value = value.strip().lower()
        if not _DOMAIN_RE.match(value):
            raise serializers.ValidationError("domain must be a hostname such as 'example.com'.")
        return value

    def validate_external_id(self, value):
        normalized = normalize_external_id(value)
        if value is not None and normalized is None:
            raise serializers.ValidationError("This field may not be blank.")
        if normalized is not None and len(normalized) > MAX_EXTERNAL_ID_LENGTH:
            raise serializers.ValidationError(
                f"Ensure this field has no more than {MAX_EXTERNAL_ID_LENGTH} characters."
            )
        return normalized

    def validate_email(self, value):
        return value.strip().lower() if value else value

    def validate_owner(self, value):
        return value.strip().lower() if value else value

    def to_representation(self, customer: Customer) -> dict:
        # Hand-written: this runs for every customer in every list and webhook payload.
        return customer_representation(customer)


# The columns the API object is built from: lists fetch just these as dicts (`.values()`), which
# skips building a model instance per row, the largest cost of a 100-customer page.
REPRESENTATION_FIELDS = (
    "id",
    "name",
    "email",
    "domain",
    "external_id",
    "plan",
    "owner",
    "lifecycle_stage",
    "churned_at",
    "metadata",
    "health_score",
    "health_status",
    "health_computed_at",
    "created_at",
    "updated_at",
)


def health_summary(customer: Customer) -> dict | None:
    return _health(vars(customer))


def _health(row: Mapping) -> dict | None:
    if row["health_computed_at"] is None:
        return None
    return {
        "score": row["health_score"],
        "status": row["health_status"] or HealthStatus.UNKNOWN,
        "computed_at": iso(row["health_computed_at"]),
    }


def customer_representation(customer: Customer | Mapping) -> dict:
    """The API object, from a Customer or from a `.values(*REPRESENTATION_FIELDS)` row."""
    row = customer if isinstance(customer, Mapping) else vars(customer)
    return {
        "id": row["id"],
        "object": "customer",
        "name": row["name"],
        "email": row["email"],
        "domain": row["domain"],
        "external_id": row["external_id"],
        "plan": row["plan"],
        "owner": row["owner"],
        "lifecycle_stage": row["lifecycle_stage"],
        "churned_at": iso(row["churned_at"]),
        "metadata": row["metadata"] or {},
        "health": _health(row),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


class OutcomeSerializer(serializers.Serializer):
    """A recorded churn or win-back (output only)."""

    id = serializers.CharField(help_text="out_...")
    object = serializers.CharField(help_text='Always "outcome".')
    customer = serializers.CharField(help_text="cus_...")
    kind = serializers.ChoiceField(choices=OutcomeKind.choices)
    at = serializers.DateTimeField(help_text="When it happened (may be backdated).")
    source = serializers.ChoiceField(choices=OutcomeSource.choices, help_text="Who recorded it.")


def outcome_representation(outcome: Outcome) -> dict:
    return {
        "id": outcome.id,
        "object": "outcome",
        "customer": outcome.customer_id,
        "kind": outcome.kind,
        "at": iso(outcome.at),
        "source": outcome.source,
    }
