from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"

    def ready(self) -> None:
        from customers.hooks import register_customer_purger
        from events.services import events_purge_customer

        register_customer_purger(events_purge_customer)
