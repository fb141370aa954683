"""Admin for the catalog, instances and clusters. Requests and operations are read-only here: they change
only through the workflow (approval queue, API, engine), never by editing rows."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from core.admin_audit import AuditedAdminMixin
from instances.forms_instructions import InstructionSourceForm
from instances.models import (
    Application,
    ApplicationComponent,
    ApplicationVersion,
    Backup,
    ChangeRequest,
    Cluster,
    Instance,
    InstructionSource,
    Operation,
)
from instances.models.instances import validate_storage_key


class ApplicationVersionInline(admin.TabularInline):
    model = ApplicationVersion
    extra = 0
    fields = ["version", "is_available", "source", "deployable", "released_at"]
    readonly_fields = ["source", "deployable"]


class ApplicationComponentInline(admin.TabularInline):
    model = ApplicationComponent
    extra = 0
    fields = ["component", "placeholder", "repository"]


@admin.register(Application)
class ApplicationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "kustomize_base", "backup_cronjob", "release_pattern", "scan_block_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ApplicationComponentInline, ApplicationVersionInline]


class InstanceForm(forms.ModelForm):
    """The backup secret key is write-only: never shown; empty keeps the stored one; "remove" forgets both halves
    (the instance's backups then fail until a key is entered again)."""

    backup_secret_access_key = forms.CharField(
        label=_("backup secret access key"),
        required=False,
        max_length=256,
        validators=[validate_storage_key],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Enter a key to replace the stored one (it is encrypted and never shown again)."),
    )
    remove_backup_credentials = forms.BooleanField(label=_("remove the backup credentials"), required=False)

    class Meta:
        model = Instance
        fields = ["organisation", "application", "slug", "hostname", "cluster", "size", "settings", "backup_schedule",
                  "backup_access_key_id"]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("remove_backup_credentials"):
            cleaned["backup_access_key_id"] = ""
        elif cleaned.get("backup_access_key_id") and not (
            cleaned.get("backup_secret_access_key") or self.instance.backup_secret_access_key
        ):
            self.add_error("backup_secret_access_key", _("Enter the secret key that goes with the access key."))
        return cleaned

    def save(self, commit=True):
        instance = super().save(commit=False)
        if self.cleaned_data.get("remove_backup_credentials"):
            instance.backup_access_key_id = ""
            instance.backup_secret_access_key = ""
        elif secret := self.cleaned_data.get("backup_secret_access_key"):
            instance.backup_secret_access_key = secret
        if commit:
            instance.save()
            self.save_m2m()
        return instance


@admin.register(Instance)
class InstanceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = InstanceForm
    list_display = ["slug", "organisation", "application", "current_version", "status", "cluster", "size", "drift"]
    list_filter = ["status", "application", "cluster", "size", "drift"]
    search_fields = ["slug", "hostname", "organisation__name"]
    readonly_fields = ["status", "current_version", "images", "drift", "drift_detail", "synced_at", "applied_images"]
    list_select_related = ["organisation", "application", "current_version", "cluster"]


class ClusterForm(forms.ModelForm):
    """The kubeconfig is write-only: the form never shows it; leaving it empty keeps the stored one."""

    kubeconfig = forms.CharField(
        label=_("kubeconfig"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off"}),
        help_text=_("Paste a kubeconfig to replace the stored one (it is encrypted and never shown again)."),
    )

    class Meta:
        model = Cluster
        fields = ["name", "connection", "kubeconfig", "context", "ingress_class", "ingress_namespace", "domain",
                  "tls_cluster_issuer", "is_default"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["kubeconfig"] = ""

    def clean_kubeconfig(self):
        value = self.cleaned_data["kubeconfig"]
        if not value and self.instance.pk:
            return self.instance.kubeconfig  # still the stored value: the form copies cleaned data later
        if value:
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise forms.ValidationError(_("This is not valid YAML.")) from exc
            if not isinstance(parsed, dict) or "clusters" not in parsed:
                raise forms.ValidationError(_("This does not look like a kubeconfig (no clusters)."))
        return value


@admin.register(Cluster)
class ClusterAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = ClusterForm
    list_display = ["name", "connection", "is_default", "reachable", "server_version", "checked_at"]
    readonly_fields = ["reachable", "server_version", "checked_at", "last_error"]


@admin.register(InstructionSource)
class InstructionSourceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Git sources of instruction files; the maintainers' pages offer the same form and the last report."""

    form = InstructionSourceForm
    # Without the form's "remove the secret" box, which it shows only for a stored secret (the pages offer it).
    fields = ["name", "url", "branch", "path", "application", "poll_interval", "enabled", "username", "secret",
              "last_commit", "last_polled_at", "last_imported_at", "last_error"]  # fmt: skip
    list_display = ["name", "safe_url", "branch", "path", "enabled", "last_commit", "last_polled_at"]
    list_filter = ["enabled"]
    readonly_fields = ["last_commit", "last_polled_at", "last_imported_at", "last_error"]


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyAdmin):
    list_display = ["pk", "kind", "organisation", "target_name", "target_version", "status", "created_at"]
    list_filter = ["status", "kind", "source"]
    list_select_related = ["organisation", "instance", "target_version"]


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ["pk", "kind", "instance", "status", "queued_at", "finished_at", "attempts"]
    list_filter = ["status", "kind"]
    exclude = ["manifests"]
    list_select_related = ["instance"]


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdmin):
    list_display = ["instance", "job_name", "trigger", "status", "started_at", "finished_at"]
    list_filter = ["status", "trigger"]
    list_select_related = ["instance"]
