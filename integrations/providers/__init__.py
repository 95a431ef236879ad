"""The provider registry: provider name -> connector class."""

from __future__ import annotations

from integrations.providers.base import Connector


def connector_for(provider: str, credentials: dict) -> Connector:
    if provider == "stripe":
        from integrations.providers.stripe import StripeConnector

        return StripeConnector(credentials)
    if provider == "hubspot":
        from integrations.providers.hubspot import HubSpotConnector

        return HubSpotConnector(credentials)
    if provider == "salesforce":
        from integrations.providers.salesforce import SalesforceConnector

        return SalesforceConnector(credentials)
    raise ValueError(f"unknown provider {provider!r}")
