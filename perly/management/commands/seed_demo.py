"""Load the demo workspace once; every run prints a fresh working API key, and the admin login
when this run created the admin (a rerun keeps the existing password).

Each domain app may ship a `demo.py` with `seed(workspace)`; they run in dependency order.
"""

from __future__ import annotations

import importlib
import secrets

from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from perly.apikeys import api_key_create
from perly.models import Workspace
from perly.services import workspace_create

DEMO_SLUG = "demo"
# Billing (integrations) comes before health so that the backfilled scores include it.
DEMO_STEPS = ("customers", "events", "integrations", "health", "webhooks")


class Command(BaseCommand):
    help = "Create the demo workspace with realistic data (once), then print an API key and admin login."

    def handle(self, **options):
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if workspace is None:
            # One transaction: a seed that fails half-way leaves nothing, so the next run retries
            # instead of "reusing" half a demo.
            with transaction.atomic():
                workspace = workspace_create(slug=DEMO_SLUG, name="Demo Co")
                for app in DEMO_STEPS:
                    try:
                        module = importlib.import_module(f"{app}.demo")
                    except ModuleNotFoundError as exc:
                        if exc.name != f"{app}.demo":
                            raise  # demo.py exists but imports something missing: say so
                        continue
                    self.stdout.write(f"Seeding demo {app}...")
                    module.seed(workspace)
        else:
            self.stdout.write("Demo workspace exists; reusing its data.")

        users = get_user_model()
        password = None
        if not users.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            users.objects.create_superuser("admin", "admin@perly-demo.io", password)
            # The printed password must work now, even if earlier wrong guesses locked "admin" out.
            axes_reset(username="admin")

        _, full_key = api_key_create(workspace=workspace, name="demo (seed_demo)", scopes="read,write")
        self.stdout.write("")
        if password is not None:
            self.stdout.write("Admin:   /admin/  user 'admin'  password " + password)
        else:
            # Someone may have chosen their own password: a rerun never resets it.
            self.stdout.write(
                "Admin:   /admin/  user 'admin' (existing password kept; change it with "
                "`manage.py changepassword admin`)"
            )
        self.stdout.write("API key (workspace 'demo', read+write):")
        self.stdout.write(full_key)
