from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from perly.models import Workspace
from perly.services import workspace_create


class Command(BaseCommand):
    help = "Create a workspace. Prints its id on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--test", action="store_true", help="A test workspace (keys read pk_test_).")

    def handle(self, slug, name, test, **options):
        if slugify(slug) != slug:
            raise CommandError(f"Invalid slug {slug!r}: use lowercase letters, digits and hyphens.")
        if Workspace.objects.filter(slug=slug).exists():
            raise CommandError(f"Workspace {slug!r} already exists.")
        workspace = workspace_create(slug=slug, name=name, is_test=test)
        self.stdout.write(f"Created workspace {workspace.slug} ({'test' if test else 'live'}).")
        self.stdout.write(workspace.id)
