"""Choices shared by the portal's models."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class MembershipRole(models.TextChoices):
    ADMIN = "admin", _("Functional admin")
    VIEWER = "viewer", _("Viewer")


MAINTAINERS_GROUP = "maintainers"
# The permission that makes a user a maintainer: approve or reject any organisation's requests.
APPROVE_PERMISSION = "instances.approve_changerequest"
