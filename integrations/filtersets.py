from __future__ import annotations

import django_filters

from integrations.models import Integration, IntegrationStatus, Provider


class IntegrationFilterSet(django_filters.FilterSet):
    provider = django_filters.ChoiceFilter(choices=Provider.choices)
    status = django_filters.ChoiceFilter(choices=IntegrationStatus.choices)

    class Meta:
        model = Integration
        fields = ["provider", "status"]
