from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from perly.apikeys import api_key_create
from perly.models import Workspace
from perly.scopes import InvalidScope


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Create an API key for a workspace. Prints the full key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The workspace slug.")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--scopes", default="read,write", help="read|write|customers:read,events:write,..."
        )
        parser.add_argument("--rate-limit-read", type=positive_int)
        parser.add_argument("--rate-limit-write", type=positive_int)
        parser.add_argument("--rate-limit-events", type=positive_int)
        parser.add_argument("--expires-in-days", type=positive_int)

    def handle(self, slug, name, scopes, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        expires_at = None
        if options["expires_in_days"]:
            expires_at = timezone.now() + timedelta(days=options["expires_in_days"])
        try:
            key, full_key = api_key_create(
                workspace=workspace,
                name=name,
                scopes=scopes,
                rate_limit_read=options["rate_limit_read"],
                rate_limit_write=options["rate_limit_write"],
                rate_limit_events=options["rate_limit_events"],
                expires_at=expires_at,
            )
        except InvalidScope as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Created API key {key.id} for workspace {slug} with scopes {','.join(key.scopes)}."
        )
        self.stdout.write("Store it now; it cannot be shown again:")
        self.stdout.write(full_key)
