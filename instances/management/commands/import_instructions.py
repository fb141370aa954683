"""`manage.py import_instructions PATH [--dry-run] [--as USERNAME] [--application SLUG]`: import an instruction file
and print the per-line report. Exit status 1 when a line is in error or the file is refused, 0 otherwise.

Without ``--as`` the file is imported as the system ("system: instructions file <name>"), which may file for every
organisation; with it, as that user, with their permissions and tenancy. ``-`` reads standard input.
"""

import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.audit import AuditContext
from instances.instructions.importer import import_instructions
from instances.instructions.parser import InstructionFileError, decode
from instances.models import Application


class Command(BaseCommand):
    help = "Import a legacy instruction file (action|instance|version|dd/MM/yyyy-HH:MM) and print its report."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The file to import, or - for standard input.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen, save nothing.")
        parser.add_argument("--as", dest="username", help="Import as this user (default: the system).")
        parser.add_argument("--application", help="Slug of the application of C lines.")

    def handle(self, *args, path, dry_run, username, application, **options):
        max_bytes = settings.PORTAL_INSTRUCTIONS_MAX_BYTES
        try:
            if path == "-":
                data = sys.stdin.buffer.read(max_bytes + 1)
            else:
                with open(path, "rb") as handle:
                    data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        if username:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"no user named {username}")
            ctx = AuditContext(user=user, label=f"{username} (import_instructions)")
        else:
            ctx = AuditContext.system(f"instructions file {path}")
        chosen = None
        if application:
            chosen = Application.objects.filter(slug=application).first()
            if chosen is None:
                raise CommandError(f"no application with slug {application}")
        try:
            report = import_instructions(ctx, decode(data, max_bytes=max_bytes), dry_run=dry_run, application=chosen)
        except InstructionFileError as refused:
            self.stderr.write(refused.message.english)
            sys.exit(1)
        for line in report.lines:
            where = f"line {line.line}" if line.line else "removed"
            request = f" #{line.request}" if line.request else ""
            self.stdout.write(f"{where}: {line.status}{request}: {line.message.english}")
            if line.warning:
                self.stdout.write(f"{where}: warning: {line.warning.english}")
        self.stdout.write(str(report))
        if report.errors:
            sys.exit(1)
