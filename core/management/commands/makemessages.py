"""Django's makemessages, which also collects the sentences marked with ``core.messages.msg`` and ``_l``."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    # `_l` is how modules that need both spell gettext_lazy (`from … import gettext_lazy as _l`).
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=msg", "--keyword=_l"]
