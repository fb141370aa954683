from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Organisations, roles, the audit trail, job records and what every other app builds on."""

    name = "core"
    verbose_name = _("Core")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from core.api import schema  # noqa: F401  (registers the token scheme with the schema generator)

        # A maintainer-set address becomes the account's verified address in allauth's table (core/auth.py).
        post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="core.trusted_address")


def _user_saved(sender, instance, raw=False, update_fields=None, **kwargs):
    # A login saves last_login only: nothing to look at then.
    if not raw and (update_fields is None or "email" in update_fields):
        from core.auth import record_trusted_address

        record_trusted_address(instance)
