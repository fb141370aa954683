from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Organisations, roles, the audit trail, job records and what every other app builds on."""

    name = "core"
    verbose_name = _("Core")

    def ready(self):
        from core.api import schema  # noqa: F401  (registers the token scheme with the schema generator)
