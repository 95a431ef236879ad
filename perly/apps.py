from django.apps import AppConfig


class PerlyConfig(AppConfig):
    name = "perly"
    verbose_name = "Perly platform"
