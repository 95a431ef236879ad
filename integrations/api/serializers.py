"""Input validation and the API representation of integrations and sync runs."""

from __future__ import annotations

from django.db.models import Max, Subquery
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from integrations import config
from integrations.models import Integration, IntegrationStatus, Provider, SyncRun, SyncStatus, SyncTrigger
from perly.api import StrictSerializerMixin
from perly.timestamps import iso


class ConfigSerializer(StrictSerializerMixin, serializers.Serializer):
    sync_interval_minutes = serializers.IntegerField(
        min_value=config.MIN_SYNC_INTERVAL_MINUTES,
        max_value=config.MAX_SYNC_INTERVAL_MINUTES,
        required=False,
        help_text="Minutes between scheduled syncs (default 60, at least 15).",
    )
    create_customers = serializers.BooleanField(
        required=False, help_text="Create a Perly customer for an unmatched provider account (default true)."
    )


class StripeCredentialsSerializer(StrictSerializerMixin, serializers.Serializer):
    api_key = serializers.CharField(max_length=255, help_text="A secret (sk_...) or restricted (rk_...) key.")

    def validate_api_key(self, value: str) -> str:
        if not value.startswith(("sk_", "rk_")):
            raise serializers.ValidationError(
                "api_key must be a Stripe secret (sk_...) or restricted (rk_...) key."
            )
        return value


class HubSpotCredentialsSerializer(StrictSerializerMixin, serializers.Serializer):
    access_token = serializers.CharField(max_length=1024, help_text="A private-app or OAuth access token.")


class SalesforceCredentialsSerializer(StrictSerializerMixin, serializers.Serializer):
    client_id = serializers.CharField(max_length=255)
    client_secret = serializers.CharField(max_length=255)
    login_url = serializers.CharField(
        required=False,
        trim_whitespace=False,  # whitespace anywhere is refused by the URL check, with its reason
        help_text="Your My Domain or sandbox login URL (an https origin on salesforce.com or force.com); "
        "default login.salesforce.com.",
    )

    def validate_login_url(self, value: str) -> str:
        from integrations.providers.salesforce import checked_login_url
        from perly.outbound import OutboundUrlError

        try:
            return checked_login_url(value).url  # stored as it will be called
        except OutboundUrlError as exc:
            raise serializers.ValidationError(
                f"{exc} It must be an https URL on salesforce.com or force.com."
            )


CREDENTIAL_SERIALIZERS = {
    Provider.STRIPE: StripeCredentialsSerializer,
    Provider.HUBSPOT: HubSpotCredentialsSerializer,
    Provider.SALESFORCE: SalesforceCredentialsSerializer,
}


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class CredentialsField(serializers.JSONField):
    """Any JSON in, checked per provider in validate(); the spec says what that allows, an object
    of strings, so a generated client types it (a bare JSONField documents nothing)."""


class IntegrationCreateSerializer(StrictSerializerMixin, serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices)
    credentials = CredentialsField(
        help_text='stripe: {"api_key"}; hubspot: {"access_token"}; salesforce: {"client_id", "client_secret", "login_url"?}.'
    )
    config = ConfigSerializer(required=False)

    def validate(self, attrs: dict) -> dict:
        credentials = CREDENTIAL_SERIALIZERS[attrs["provider"]](data=attrs["credentials"])
        if not credentials.is_valid():
            raise serializers.ValidationError({"credentials": credentials.errors})
        attrs["credentials"] = dict(credentials.validated_data)
        attrs["config"] = dict(attrs.get("config") or {})
        return attrs


class SyncStatsSerializer(serializers.Serializer):
    records_read = serializers.IntegerField()
    customers_created = serializers.IntegerField()
    customers_updated = serializers.IntegerField()
    customers_matched = serializers.IntegerField()
    signals_written = serializers.IntegerField()
    requests_made = serializers.IntegerField()
    rate_limited_retries = serializers.IntegerField()


class SyncRunSerializer(serializers.Serializer):
    """Schema only: the body is built by sync_run_representation."""

    id = serializers.CharField(help_text="sync_...")
    object = serializers.ChoiceField(choices=["sync_run"])
    integration = serializers.CharField(help_text="int_...")
    status = serializers.ChoiceField(choices=SyncStatus.choices)
    trigger = serializers.ChoiceField(choices=SyncTrigger.choices)
    stats = SyncStatsSerializer()
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class IntegrationSerializer(serializers.Serializer):
    """Schema only: the body is built by integration_representation."""

    id = serializers.CharField(help_text="int_...")
    object = serializers.ChoiceField(choices=["integration"])
    provider = serializers.ChoiceField(choices=Provider.choices)
    status = serializers.ChoiceField(choices=IntegrationStatus.choices)
    credentials = serializers.DictField(
        child=serializers.CharField(),
        help_text='A hint only, e.g. {"api_key": "sk_…9xYz"}; {} once disconnected.',
    )
    config = ConfigSerializer()
    last_synced_at = serializers.DateTimeField(allow_null=True)
    next_sync_at = serializers.DateTimeField(allow_null=True)
    last_sync = SyncRunSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    disconnected_at = serializers.DateTimeField(allow_null=True)


class IntegrationDetailSerializer(IntegrationSerializer):
    sync_history = SyncRunSerializer(many=True, help_text="The last 20 runs, newest first.")


def sync_run_representation(run: SyncRun) -> dict:
    from integrations.sync import empty_stats

    return {
        "id": run.id,
        "object": "sync_run",
        "integration": run.integration_id,
        "status": run.status,
        "trigger": run.trigger,
        "stats": {**empty_stats(), **(run.stats or {})},
        "error": run.error,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }


def integration_representation(integration: Integration, last_sync: SyncRun | None | bool = False) -> dict:
    if last_sync is False:
        last_sync = SyncRun.objects.filter(integration_id=integration.pk).order_by("-id").first()
    return {
        "id": integration.id,
        "object": "integration",
        "provider": integration.provider,
        "status": integration.status,
        "credentials": integration.credentials_hint or {},
        "config": {**config.DEFAULTS, **(integration.config or {})},
        "last_synced_at": iso(integration.last_synced_at),
        "next_sync_at": iso(integration.next_sync_at),
        "last_sync": sync_run_representation(last_sync) if last_sync else None,
        "created_at": iso(integration.created_at),
        "disconnected_at": iso(integration.disconnected_at),
    }


def integrations_representation(integrations: list[Integration]) -> list[dict]:
    """A page of integrations with each one's last run, fetched in one query (not one per row)."""
    latest_ids = (
        SyncRun.objects.filter(integration_id__in=[i.pk for i in integrations])
        .values("integration_id")
        .annotate(latest=Max("id"))  # ids are time-sortable: the greatest is the newest run
        .values("latest")
    )
    last = {run.integration_id: run for run in SyncRun.objects.filter(pk__in=Subquery(latest_ids))}
    return [integration_representation(i, last_sync=last.get(i.pk)) for i in integrations]


def integration_detail_representation(integration: Integration) -> dict:
    history = list(
        SyncRun.objects.filter(integration_id=integration.pk).order_by("-id")[: config.SYNC_HISTORY_LENGTH]
    )
    body = integration_representation(integration, last_sync=history[0] if history else None)
    body["sync_history"] = [sync_run_representation(run) for run in history]
    return body
