from django.core.management.base import BaseCommand, CommandError

from perly.apikeys import api_key_find, api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, given its id (key_...) or the full key."

    def add_arguments(self, parser):
        parser.add_argument("key_or_id")

    def handle(self, key_or_id, **options):
        key = api_key_find(key_or_id)
        if key is None:
            raise CommandError("No such API key.")
        already = key.revoked_at is not None
        api_key_revoke(key=key)
        self.stdout.write(f"API key {key.id} {'was already' if already else 'is now'} revoked.")
