"""Rescore now: every customer, one workspace's, or one customer."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer
from health import services
from perly.models import Workspace


class Command(BaseCommand):
    help = "Rescore customers now (set-based): all, --workspace SLUG, or --customer cus_..."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="A workspace slug.")
        parser.add_argument("--customer", help="A customer id (cus_...).")

    def handle(self, *args, workspace=None, customer=None, **options):
        workspaces = Workspace.objects.all()
        if workspace:
            workspaces = workspaces.filter(slug=workspace)
            if not workspaces.exists():
                raise CommandError(f"No such workspace: {workspace!r}")
        if customer:
            row = (
                Customer.objects.filter(pk=customer, workspace__in=workspaces).values("workspace_id").first()
            )
            if row is None:
                raise CommandError(f"No such customer: {customer!r}")
            count = services.rescore_customers(workspace_id=row["workspace_id"], customer_ids=[customer])
        else:
            count = sum(services.rescore_customers(workspace_id=ws.id) for ws in workspaces)
        self.stdout.write(f"Rescored {count} customer(s).")
