"""Where SMILE's images come from, and which CronJob backs it up."""

from django.db import migrations

SMILE_IMAGES = {
    "smile-core": {"repository": "registry.example.org/smile/core"},
    "smile-nginx": {"repository": "registry.example.org/smile/nginx"},
    "smile-timemachine": {"repository": "registry.example.org/smile/timemachine"},
    "memcached": {"repository": "docker.io/library/memcached", "tag": "1.6.29-alpine"},
    "postgres": {"repository": "docker.io/library/postgres", "tag": "16.4-alpine"},
}


def forwards(apps, schema_editor):
    Application = apps.get_model("instances", "Application")
    Application.objects.filter(slug="smile", images={}).update(images=SMILE_IMAGES, backup_cronjob="smile-timemachine")


class Migration(migrations.Migration):
    dependencies = [("instances", "0004_application_images")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
