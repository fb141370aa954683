"""Organisations (universities) and who belongs to them."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.choices import APPROVE_PERMISSION, MembershipRole


def validate_email_list(value: str) -> None:
    """Validate a comma-separated list of e-mail addresses."""
    for address in split_emails(value):
        try:
            validate_email(address)
        except ValidationError as exc:
            raise ValidationError(_("%(address)s is not a valid e-mail address."), params={"address": address}) from exc


def split_emails(value: str) -> list[str]:
    return [item.strip() for item in (value or "").replace(";", ",").split(",") if item.strip()]


class TenantQuerySet(models.QuerySet):
    """Objects that belong to an organisation. ``visible_to`` is the tenancy rule, in one place: maintainers see
    everything, anyone else only what belongs to the organisations they are a member of."""

    # The lookup from the model to its organisation.
    organisation_field = "organisation"

    def visible_to(self, user):
        if not user.is_authenticated:
            return self.none()
        if is_maintainer(user):
            return self
        mine = Membership.objects.filter(user=user).values("organisation")
        return self.filter(**{f"{self.organisation_field}__in": mine})


class OrganisationQuerySet(TenantQuerySet):
    organisation_field = "pk"


class Organisation(models.Model):
    """A university (or any tenant) that runs its own instances through the portal."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    contact_emails = models.CharField(
        _("contact e-mails"),
        max_length=1000,
        blank=True,
        validators=[validate_email_list],
        help_text=_("Comma-separated addresses told about approvals, rejections and completions."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("instances:instance_list") + f"?organisation={self.slug}"

    @property
    def contact_email_list(self) -> list[str]:
        return split_emails(self.contact_emails)


class Membership(models.Model):
    """A user's role in one organisation: functional admin (may request) or viewer (read only)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("organisation")
    )
    role = models.CharField(_("role"), max_length=16, choices=MembershipRole.choices, default=MembershipRole.VIEWER)

    class Meta:
        ordering = ["organisation__name", "user__username"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique_user_org")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organisation} ({self.get_role_display()})"


def is_maintainer(user) -> bool:
    """Maintainers hold the approval permission (through the maintainers group, or as superusers)."""
    return bool(user and user.is_authenticated and user.has_perm(APPROVE_PERMISSION))


def can_request_for(user, organisation) -> bool:
    """Functional admins of an organisation (and maintainers) may file requests for it."""
    if not user.is_authenticated:
        return False
    if is_maintainer(user):
        return True
    return Membership.objects.filter(user=user, organisation=organisation, role=MembershipRole.ADMIN).exists()


def requestable_organisations(user):
    """Organisations for which the user may file requests."""
    if is_maintainer(user):
        return Organisation.objects.all()
    return Organisation.objects.filter(memberships__user=user, memberships__role=MembershipRole.ADMIN).distinct()
