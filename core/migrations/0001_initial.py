"""Organisations, memberships and the audit trail, as the `portal` app created them (tables `portal_*`).

These models moved from `portal` to `core`. This migration replaces the two migrations `portal` had, so a
database that applied them counts it as applied and keeps its tables and rows; a new database runs it.
The next migration gives the tables their `core_*` names.
"""

import django.db.models.deletion
import core.models.organisations
from django.conf import settings
from django.db import migrations, models

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION portal_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER portal_auditevent_append_only BEFORE UPDATE OR DELETE ON portal_auditevent
    FOR EACH ROW EXECUTE FUNCTION portal_auditevent_append_only();
"""


def append_only(apps, schema_editor):
    # On PostgreSQL the database itself refuses UPDATE and DELETE on audit events.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, params=None)


class Migration(migrations.Migration):

    initial = True
    replaces = [("portal", "0001_initial"), ("portal", "0002_audit_append_only")]

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Organisation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200, unique=True, verbose_name='name')),
                ('slug', models.SlugField(max_length=40, unique=True, verbose_name='slug')),
                ('contact_emails', models.CharField(blank=True, help_text='Comma-separated addresses told about approvals, rejections and completions.', max_length=1000, validators=[core.models.organisations.validate_email_list], verbose_name='contact e-mails')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
            ],
            options={
                'db_table': 'portal_organisation',
                'verbose_name': 'organisation',
                'verbose_name_plural': 'organisations',
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='Membership',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('admin', 'Functional admin'), ('viewer', 'Viewer')], default='viewer', max_length=16, verbose_name='role')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL, verbose_name='user')),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='core.organisation', verbose_name='organisation')),
            ],
            options={
                'db_table': 'portal_membership',
                'verbose_name': 'membership',
                'verbose_name_plural': 'memberships',
                'ordering': ['organisation__name', 'user__username'],
                'constraints': [models.UniqueConstraint(fields=('user', 'organisation'), name='membership_unique_user_org')],
            },
        ),
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='time')),
                ('actor_label', models.CharField(max_length=200, verbose_name='actor')),
                ('action', models.CharField(db_index=True, max_length=64, verbose_name='action')),
                ('target_type', models.CharField(max_length=64, verbose_name='target type')),
                ('target_id', models.CharField(max_length=64, verbose_name='target id')),
                ('target_label', models.CharField(max_length=200, verbose_name='target')),
                ('before', models.JSONField(blank=True, null=True, verbose_name='before')),
                ('after', models.JSONField(blank=True, null=True, verbose_name='after')),
                ('reason', models.TextField(blank=True, verbose_name='reason')),
                ('request_id', models.CharField(blank=True, max_length=64, verbose_name='request id')),
                ('ip_address', models.GenericIPAddressField(blank=True, null=True, verbose_name='IP address')),
                ('actor', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='actor')),
                ('organisation', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='core.organisation', verbose_name='organisation')),
            ],
            options={
                'db_table': 'portal_auditevent',
                'verbose_name': 'audit event',
                'verbose_name_plural': 'audit events',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['target_type', 'target_id'], name='audit_target_idx')],
            },
        ),
        migrations.RunPython(append_only, migrations.RunPython.noop),
    ]
