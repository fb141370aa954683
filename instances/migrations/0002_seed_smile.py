"""SMILE is the first application of the catalog."""

from django.db import migrations


def forwards(apps, schema_editor):
    Application = apps.get_model("instances", "Application")
    Application.objects.get_or_create(
        slug="smile",
        defaults={
            "name": "SMILE",
            "description": "Course choices and international mobility for universities.",
            "kustomize_base": "smile",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("instances", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
