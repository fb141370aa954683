"""Every change made in the Django admin becomes an audit event (actor, before/after, request id, IP)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.forms.models import model_to_dict

from core.audit import AuditContext, record

# Never copied into the audit trail.
SECRET_FIELDS = {"password", "kubeconfig", "key", "secret", "token"}


def snapshot(obj) -> dict:
    """A JSON-safe picture of a model instance, without secrets."""
    data = {}
    for name, value in model_to_dict(obj).items():
        if name in SECRET_FIELDS:
            data[name] = "(set)" if value else ""
        elif isinstance(value, (str, int, float, bool, type(None))):
            data[name] = value
        elif isinstance(value, (list, tuple)):
            data[name] = [str(getattr(v, "pk", v)) for v in value]
        else:
            data[name] = str(getattr(value, "pk", value))
    return data


def organisation_of(obj):
    from core.models import Organisation

    if isinstance(obj, Organisation):
        return obj
    return getattr(obj, "organisation", None)


class AuditedAdminMixin:
    """Mix into a ModelAdmin: creations, changes and deletions are recorded with the admin user as actor."""

    def _audit(self, request, action: str, obj, before: dict | None, after: dict | None) -> None:
        label = obj._meta.label_lower
        record(AuditContext.from_request(request), f"admin.{label}.{action}", obj,
               organisation=organisation_of(obj), before=before, after=after)  # fmt: skip

    def save_model(self, request, obj, form, change):
        before = snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)
        self._audit(request, "changed" if change else "created", obj, before, snapshot(obj))

    def delete_model(self, request, obj):
        before = snapshot(obj)
        self._audit(request, "deleted", obj, before, None)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():  # the events stand only if the deletion does
            for obj in queryset:
                self._audit(request, "deleted", obj, snapshot(obj), None)
            super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        # From the database: the formset's own queryset holds objects it has already edited in place.
        pks = [f.instance.pk for f in formset.initial_forms if f.instance.pk]
        befores = {o.pk: snapshot(o) for o in formset.model._default_manager.filter(pk__in=pks)}
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            self._audit(request, "deleted", obj, befores.get(obj.pk) or snapshot(obj), None)
            obj.delete()
        for obj in instances:
            created = obj.pk is None
            obj.save()
            self._audit(request, "created" if created else "changed", obj, None if created else befores.get(obj.pk),
                        snapshot(obj))  # fmt: skip
        formset.save_m2m()


def audited_user_admin():
    """Re-register the user admin so account changes (groups, activation, passwords) are audited too."""
    from django.contrib import admin
    from django.contrib.auth.admin import GroupAdmin, UserAdmin
    from django.contrib.auth.models import Group

    User = get_user_model()

    class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
        pass

    class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
        pass

    for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
        admin.site.register(model, model_admin)
