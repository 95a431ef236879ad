from django.apps import AppConfig


class PerlyConfig(AppConfig):
    name = "perly"
    verbose_name = "Perly platform"

    def ready(self) -> None:
        from perly import openapi  # noqa: F401  (registers the OpenAPI auth extension)
