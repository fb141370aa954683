"""The tables of organisations, memberships and audit events take their `core_*` names.

On PostgreSQL the append-only trigger stays attached to the renamed table; it and its function are renamed
to match. Rows, keys and the foreign keys of other tables are kept: a rename moves no data.
"""

from django.db import migrations

RENAME_TRIGGER = """
ALTER TRIGGER portal_auditevent_append_only ON core_auditevent RENAME TO core_auditevent_append_only;
ALTER FUNCTION portal_auditevent_append_only() RENAME TO core_auditevent_append_only;
"""
RENAME_TRIGGER_BACK = """
ALTER TRIGGER core_auditevent_append_only ON core_auditevent RENAME TO portal_auditevent_append_only;
ALTER FUNCTION core_auditevent_append_only() RENAME TO portal_auditevent_append_only;
"""


def rename_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RENAME_TRIGGER, params=None)


def rename_trigger_back(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RENAME_TRIGGER_BACK, params=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [
        migrations.AlterModelTable(name="organisation", table=None),
        migrations.AlterModelTable(name="membership", table=None),
        migrations.AlterModelTable(name="auditevent", table=None),
        migrations.RunPython(rename_trigger, rename_trigger_back),
    ]
