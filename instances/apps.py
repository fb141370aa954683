from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class InstancesConfig(AppConfig):
    name = "instances"
    verbose_name = _("Instances")

    def ready(self) -> None:
        from instances import catalogue  # noqa: F401  (connects the refresh to the registry sync)

        post_migrate.connect(ensure_maintainers_group, sender=self)


def ensure_maintainers_group(**kwargs) -> None:
    """The maintainers group exists and holds the approval permission (permissions exist only after migrate)."""
    from django.contrib.auth.models import Group, Permission

    from core.choices import APPROVE_PERMISSION, MAINTAINERS_GROUP

    app_label, codename = APPROVE_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None:
        return
    group, _created = Group.objects.get_or_create(name=MAINTAINERS_GROUP)
    group.permissions.add(permission)
