from django.contrib import admin

from core.admin_audit import AuditedAdminMixin, audited_user_admin
from core.models import AuditEvent, JobRun, Membership, Organisation

audited_user_admin()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "contact_emails"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that change only through the domain (the workflow, the engine) or never: shown, not edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the audit trail cannot be edited or deleted from the admin."""

    list_display = ["created_at", "actor_label", "action", "target_label", "organisation_id", "ip_address"]
    list_filter = ["action"]
    search_fields = ["actor_label", "target_label", "reason", "request_id"]
    date_hierarchy = "created_at"


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ["name", "status", "started_at", "finished_at", "result"]
    list_filter = ["name", "status"]
