"""A sandbox cluster is a cluster like any other: its kubeconfig points at the emulator's URL.

Clusters that had the "emulator" connection get a kubeconfig for their API URL (no credentials, as the
emulator needs none); then the connection kind and the URL field go.
"""

import yaml
from django.db import migrations, models


def kubeconfig_for(url: str) -> str:
    # Written here rather than imported: a migration must not change when the code it once called does.
    context = {"cluster": "sandbox", "user": "sandbox", "namespace": "default"}
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": url}}],
            "users": [{"name": "sandbox", "user": {}}],
            "contexts": [{"name": "sandbox", "context": context}],
            "current-context": "sandbox",
        }
    )


def emulators_to_kubeconfigs(apps, schema_editor):
    Cluster = apps.get_model("instances", "Cluster")
    for cluster in Cluster.objects.filter(connection="emulator"):
        cluster.connection = "kubeconfig"
        cluster.kubeconfig = kubeconfig_for(cluster.api_url)
        cluster.context = ""
        cluster.save(update_fields=["connection", "kubeconfig", "context"])


class Migration(migrations.Migration):
    dependencies = [("instances", "0006_instance_applied_images")]
    operations = [
        migrations.RunPython(emulators_to_kubeconfigs, migrations.RunPython.noop),
        migrations.RemoveField(model_name="cluster", name="api_url"),
        migrations.AlterField(
            model_name="cluster",
            name="connection",
            field=models.CharField(
                choices=[("kubeconfig", "Kubeconfig"), ("in_cluster", "In-cluster service account")],
                default="kubeconfig",
                max_length=16,
                verbose_name="connection",
            ),
        ),
    ]
