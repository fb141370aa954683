"""Admin for registries and their repositories. Credentials are write-only; tags and alerts come from the sync."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from core.admin_audit import AuditedAdminMixin
from registry.models import ImageRepository, ImageTag, Registry, TagOverwrite

WRITE_ONLY = ("secret", "webhook_secret")


class RegistryForm(forms.ModelForm):
    """The password or token and the webhook secret are write-only: left empty, the stored value is kept."""

    secret = forms.CharField(
        label=_("password or token"),
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Enter a value to replace the stored one (it is encrypted and never shown again)."),
    )
    webhook_secret = forms.CharField(
        label=_("webhook secret"),
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("The secret the registry's notifications present. Enter a value to replace the stored one."),
    )

    class Meta:
        model = Registry
        fields = ["name", "kind", "url", "username", "secret", "verify_tls", "webhook_secret"]

    def _keep(self, name: str):
        value = self.cleaned_data[name]
        if not value and self.instance.pk:
            return getattr(self.instance, name)
        return value

    def clean_secret(self):
        return self._keep("secret")

    def clean_webhook_secret(self):
        value = self._keep("webhook_secret")
        return value or Registry._meta.get_field("webhook_secret").get_default()


class ImageRepositoryInline(admin.TabularInline):
    model = ImageRepository
    extra = 0
    fields = ["path", "last_sync_at", "last_error"]
    readonly_fields = ["last_sync_at", "last_error"]


@admin.register(Registry)
class RegistryAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = RegistryForm
    list_display = ["name", "kind", "url", "verify_tls", "last_sync_at"]
    readonly_fields = ["last_sync_at", "last_error"]
    inlines = [ImageRepositoryInline]


@admin.register(ImageTag)
class ImageTagAdmin(ReadOnlyAdmin):
    list_display = ["repository", "tag", "digest", "scan_status", "present", "pushed_at", "last_seen_at"]
    list_filter = ["scan_status", "present", "repository__registry"]
    search_fields = ["tag", "digest", "repository__path"]
    list_select_related = ["repository__registry"]


@admin.register(TagOverwrite)
class TagOverwriteAdmin(ReadOnlyAdmin):
    list_display = ["tag", "old_digest", "new_digest", "detected_at", "resolved_at", "resolved_by"]
    list_select_related = ["tag__repository__registry"]
