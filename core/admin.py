from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from core.admin_audit import AuditedAdminMixin, audited_user_admin
from core.audit import AuditContext
from core.models import ApiToken, AuditEvent, JobRun, Membership, Organisation
from core.tokens import revoke_token

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


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are listed here and revoked (audited) with the action; they are created on the "API tokens" page or
    with ``create_api_token``, where they are shown once. The digest is never shown."""

    list_display = ("name", "user", "token_key", "read_only", "created", "expiry", "last_used_at", "revoked_at")
    list_filter = ("read_only",)
    search_fields = ("name", "token_key", "user__username")
    list_select_related = ("user",)
    exclude = ("digest",)
    actions = ["revoke"]

    @admin.action(description=_l("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        ctx = AuditContext.from_request(request)
        revoked = sum(revoke_token(ctx, token) for token in queryset.select_related("user"))
        self.message_user(request, _("%(n)d token(s) revoked.") % {"n": revoked})
