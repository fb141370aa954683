"""``manage.py create_api_token USERNAME [--read-only] [--expires-days N] [--name NAME]``: print a new token."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.audit import AuditContext
from core.errors import DomainError
from core.tokens import create_token


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What will use it (default: 'created by manage.py').")
        parser.add_argument("--read-only", action="store_true", help="Allow only reading (GET, HEAD, OPTIONS).")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after N days (default: never).")

    def handle(self, username, name, read_only, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            _token, secret = create_token(
                AuditContext.system("create_api_token"),
                user,
                name=name or "created by manage.py",
                read_only=read_only,
                expires_days=expires_days,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(secret)
