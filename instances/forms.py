"""Forms of the browser UI.

Forms are a convenience for the user: they shape and pre-check the input, but the domain functions in
:mod:`instances.workflow` and the model transitions are the guard. Their errors come back through
:meth:`DomainErrorsMixin.add_domain_error` and land on the field they name.
"""

import datetime
import zoneinfo

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from core.models.organisations import is_maintainer, requestable_organisations
from instances.models import Application, ApplicationVersion
from instances.models.instances import SLUG_MAX_LENGTH, validate_dns_label
from instances.workflow import restorable_backups

COMMENT_MAX_LENGTH = 2000


class DomainErrorsMixin:
    """Put errors raised by the domain on the form: on the field they name, else at the top of the form."""

    def add_domain_error(self, exc: Exception) -> None:
        # Field names the domain uses that the form spells differently (forms may define this mapping).
        field_map = getattr(self, "domain_field_map", {})
        if isinstance(exc, ValidationError):
            if hasattr(exc, "error_dict"):
                for name, errors in exc.error_dict.items():
                    field = field_map.get(name, name)
                    self.add_error(field if field in self.fields else None, errors)
            else:
                self.add_error(None, exc.messages)
        elif isinstance(exc, DomainError):
            field = field_map.get(exc.field, exc.field) if exc.field else None
            self.add_error(field if field in self.fields else None, str(exc.message))
        else:
            raise TypeError(f"not a domain error: {exc!r}")


class ScheduleMixin(forms.Form):
    """An optional date and time, read in the portal's time zone (settings.TIME_ZONE), not the browser's."""

    scheduled_date = forms.DateField(
        label=_("Date"),
        required=False,
        # type=date inputs always exchange ISO dates, whatever the language.
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    scheduled_time = forms.TimeField(
        label=_("Time"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    domain_field_map = {"scheduled_for": "scheduled_date"}

    def clean(self):
        cleaned = super().clean()
        date, time = cleaned.get("scheduled_date"), cleaned.get("scheduled_time")
        cleaned["scheduled_for"] = None
        if "scheduled_date" in self.errors or "scheduled_time" in self.errors:
            return cleaned
        if date is None and time is None:
            return cleaned
        if date is None:
            self.add_error("scheduled_date", _("Give the date as well as the time."))
            return cleaned
        if time is None:
            self.add_error("scheduled_time", _("Give the time as well as the date."))
            return cleaned
        try:
            cleaned["scheduled_for"] = local_datetime(date, time)
        except ValidationError as exc:
            self.add_error("scheduled_time", exc)
        return cleaned


def local_datetime(date: datetime.date, time: datetime.time) -> datetime.datetime:
    """Combine a date and a wall-clock time of the portal's time zone into an aware datetime.

    zoneinfo accepts a time that falls in the spring-forward gap and silently shifts it, so the round trip
    through UTC is what detects it; such a time never happens on the clock and is refused. A time that happens
    twice (autumn fall-back) is taken at its first occurrence.
    """
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    naive = datetime.datetime.combine(date, time.replace(second=0, microsecond=0))
    aware = timezone.make_aware(naive, zone)
    try:
        round_trip = aware.astimezone(datetime.UTC).astimezone(zone).replace(tzinfo=None)
    except OverflowError as exc:  # 0001-01-01 00:30 in Paris is before the first representable UTC instant
        raise ValidationError(_("Choose a date and time in the future."), code="out_of_range") from exc
    if round_trip != naive:
        raise ValidationError(
            _("%(time)s does not exist on %(date)s in %(zone)s (the clocks move forward); choose another time."),
            params={"time": time.strftime("%H:%M"), "date": date.isoformat(), "zone": settings.TIME_ZONE},
            code="nonexistent_time",
        )
    return aware


class VersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        label = f"{obj.application.name} {obj.version}"
        if not obj.deployable:
            label = gettext("%(label)s (blocked by the scan policy)") % {"label": label}
        return label


class VersionPolicyMixin(forms.Form):
    """Versions offered by the scan policy: deployable ones for everybody; a maintainer also sees the blocked ones
    and may choose one with a reason (audited). The versions a user may not choose are kept to say why."""

    override_reason = forms.CharField(
        label=_("Reason for deploying a blocked version"),
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Only needed when the version chosen is blocked by the scan policy; it is audited."),
    )

    def offer_versions(self, user, versions) -> None:
        versions = versions.select_related("application").order_by("application__name", "-sort_key")
        self.may_override = user is not None and is_maintainer(user)
        if self.may_override:
            self.blocked_versions = []
        else:
            self.blocked_versions = list(versions.filter(deployable=False))
            versions = versions.filter(deployable=True)
            del self.fields["override_reason"]
        self.fields["version"].queryset = versions

    def clean(self):
        cleaned = super().clean()
        version = cleaned.get("version")
        if version is not None and not version.deployable and not cleaned.get("override_reason", "").strip():
            self.add_error("override_reason", _("Say why this blocked version should be deployed anyway."))
        return cleaned

    def override_kwargs(self) -> dict:
        return {"override_reason": self.cleaned_data.get("override_reason", "")}


def comment_field() -> forms.CharField:
    return forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Anything the hosting team should know."),
    )


class RequestCreateForm(VersionPolicyMixin, ScheduleMixin, DomainErrorsMixin, forms.Form):
    """Ask for a new instance."""

    organisation = forms.ModelChoiceField(label=_("Organisation"), queryset=None, to_field_name="slug")
    application = forms.ModelChoiceField(label=_("Application"), queryset=None, to_field_name="slug")
    slug = forms.CharField(label=_("Instance name"), max_length=SLUG_MAX_LENGTH, validators=[validate_dns_label])
    version = VersionChoiceField(label=_("Version"), queryset=None)
    comment = comment_field()
    field_order = [
        "organisation", "application", "slug", "version", "override_reason", "scheduled_date", "scheduled_time",
        "comment",
    ]  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Formatted here, not at import, so that it is translated into the language of the request.
        self.fields["slug"].help_text = gettext(
            "Used for the namespace and the host name: a DNS label of at most %(max)d characters "
            "(lowercase letters, digits and hyphens, no hyphen at either end)."
        ) % {"max": SLUG_MAX_LENGTH}
        organisations = requestable_organisations(user).order_by("name")
        self.fields["organisation"].queryset = organisations
        applications = Application.objects.order_by("name")
        self.fields["application"].queryset = applications
        self.offer_versions(user, ApplicationVersion.objects.available())
        # A choice with one option is no choice: send it hidden and keep the page short.
        for name, queryset in (("organisation", organisations), ("application", applications)):
            only = list(queryset[:2])
            if len(only) == 1:
                self.fields[name].widget = forms.HiddenInput()
                self.fields[name].initial = only[0].slug
        self.order_fields(self.field_order)

    def clean(self):
        cleaned = super().clean()
        application, version = cleaned.get("application"), cleaned.get("version")
        if application and version and version.application_id != application.pk:
            self.add_error("version", _("%(v)s is not a version of %(app)s.") % {"v": version, "app": application})
        return cleaned

    def domain_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "organisation": data["organisation"],
            "application": data["application"],
            "slug": data["slug"],
            "version": data["version"],
            "scheduled_for": data["scheduled_for"],
            "comment": data["comment"],
            **self.override_kwargs(),
        }


class RequestUpdateForm(VersionPolicyMixin, ScheduleMixin, DomainErrorsMixin, forms.Form):
    """Ask to upgrade an instance to a newer available version."""

    version = VersionChoiceField(label=_("New version"), queryset=None)
    comment = comment_field()
    field_order = ["version", "override_reason", "scheduled_date", "scheduled_time", "comment"]

    def __init__(self, *args, instance, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance = instance
        versions = ApplicationVersion.objects.available().filter(application=instance.application_id)
        if instance.current_version_id:
            versions = versions.filter(sort_key__gt=instance.current_version.sort_key)
        self.offer_versions(user, versions)
        self.fields["version"].error_messages["invalid_choice"] = _(
            "Choose an available version newer than the current one."
        )
        self.order_fields(self.field_order)

    def domain_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "version": data["version"],
            "scheduled_for": data["scheduled_for"],
            "comment": data["comment"],
            **self.override_kwargs(),
        }


class RequestDeleteForm(ScheduleMixin, DomainErrorsMixin, forms.Form):
    """Ask to delete an instance; typing its name guards against deleting the wrong one."""

    confirm_slug = forms.CharField(label=_("Type the instance name to confirm"), max_length=SLUG_MAX_LENGTH + 20)
    comment = comment_field()
    field_order = ["confirm_slug", "scheduled_date", "scheduled_time", "comment"]

    def __init__(self, *args, instance, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.fields["confirm_slug"].label = gettext("Type %(slug)s to confirm") % {"slug": instance.slug}
        self.fields["confirm_slug"].widget.attrs.update({"autocomplete": "off", "spellcheck": "false"})
        self.order_fields(self.field_order)

    def clean_confirm_slug(self):
        value = self.cleaned_data["confirm_slug"].strip()
        if value != self.instance.slug:
            raise ValidationError(
                _("Type %(slug)s exactly to confirm the deletion."), params={"slug": self.instance.slug}
            )
        return value

    def domain_kwargs(self) -> dict:
        data = self.cleaned_data
        return {"scheduled_for": data["scheduled_for"], "comment": data["comment"]}


class RequestBackupForm(DomainErrorsMixin, forms.Form):
    """Ask for an on-demand backup."""

    comment = comment_field()

    def __init__(self, *args, instance, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance = instance

    def domain_kwargs(self) -> dict:
        return {"comment": self.cleaned_data["comment"]}


class BackupChoiceField(forms.ModelChoiceField):
    """A backup, labelled with when it was taken, its size and what triggered it."""

    def label_from_instance(self, obj):
        return backup_label(obj)


def backup_label(backup) -> str:
    return gettext("%(date)s — %(size)s — %(trigger)s") % {
        "date": formats.date_format(timezone.localtime(backup.taken_at), "SHORT_DATETIME_FORMAT"),
        "size": filesizeformat(backup.size) if backup.size is not None else gettext("size unknown"),
        "trigger": backup.get_trigger_display(),
    }


class RequestRestoreForm(ScheduleMixin, DomainErrorsMixin, forms.Form):
    """Ask to restore one of the instance's verified backups (newest first)."""

    backup = BackupChoiceField(label=_("Backup to restore"), queryset=None, empty_label=None)
    comment = comment_field()
    field_order = ["backup", "scheduled_date", "scheduled_time", "comment"]

    def __init__(self, *args, instance, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.fields["backup"].queryset = restorable_backups(instance)
        self.fields["backup"].help_text = _(
            "Everything written since that backup is lost; a fresh backup is taken just before the restore."
        )
        self.fields["backup"].error_messages["invalid_choice"] = _("Choose one of the verified backups listed.")
        self.order_fields(self.field_order)

    def domain_kwargs(self) -> dict:
        data = self.cleaned_data
        return {"backup": data["backup"], "scheduled_for": data["scheduled_for"], "comment": data["comment"]}


class ApproveForm(DomainErrorsMixin, forms.Form):
    # Approving a version the scan policy blocks needs a reason: the domain asks for it as "reason".
    domain_field_map = {"reason": "comment"}
    comment = forms.CharField(
        label=_("Comment (optional)"),
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RejectForm(DomainErrorsMixin, forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Told to the requester and the organisation's contacts."),
        error_messages={"required": _("Say why the request is rejected.")},
    )


class CancelForm(DomainErrorsMixin, forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), required=False, max_length=COMMENT_MAX_LENGTH)

    def __init__(self, *args, **kwargs):
        # The reject form on the same page also has a "reason" field; keep the HTML ids distinct.
        kwargs.setdefault("auto_id", "id_cancel_%s")
        super().__init__(*args, **kwargs)
