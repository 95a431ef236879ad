from __future__ import annotations

import django_filters

from webhooks.models import MessageStatus, WebhookMessage


class WebhookMessageFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=MessageStatus.choices)

    class Meta:
        model = WebhookMessage
        fields: list[str] = []
