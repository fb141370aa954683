"""`manage.py registry_guard REPOSITORY:TAG`: exit 0 when the tag is free, 1 when it exists, 2 on error."""

import sys

from django.core.management.base import BaseCommand

from registry.clients.errors import RegistryError
from registry.guard import GuardError, check, split_reference


class Command(BaseCommand):
    help = (
        "Ask the registry whether REPOSITORY:TAG exists, before a CI pipeline pushes it. Exit status: 0 the tag is "
        "free, 1 it exists (its digest is printed), 2 the question could not be answered."
    )

    def add_arguments(self, parser):
        parser.add_argument("reference", help="host/path:tag, e.g. quay.io/smile/core:1.2.7")

    def handle(self, *args, reference, **options):
        try:
            result = check(*split_reference(reference))
        except (GuardError, RegistryError) as error:
            self.stderr.write(f"registry_guard: {error}")
            sys.exit(2)
        if result.exists:
            self.stdout.write(f"{reference} exists: {result.digest}")
            sys.exit(1)
        self.stdout.write(f"{reference} is free")
