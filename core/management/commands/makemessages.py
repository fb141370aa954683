"""Django's makemessages, which also collects the sentences marked with ``core.messages.msg``."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=msg"]
