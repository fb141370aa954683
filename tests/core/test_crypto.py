"""Kubeconfigs are encrypted at rest: the database holds only ciphertext, the model the plain text."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from core import crypto
from instances.kube.errors import PermanentClusterError
from instances.models import Cluster

pytestmark = pytest.mark.django_db

KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: very-secret-token\n"


def raw_kubeconfig(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT kubeconfig FROM instances_cluster WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_kubeconfig_is_stored_encrypted():
    cluster = Cluster.objects.create(name="prod", kubeconfig=KUBECONFIG)
    stored = raw_kubeconfig(cluster.pk)
    assert stored.startswith("fernet:")
    assert "very-secret-token" not in stored
    assert Cluster.objects.get(pk=cluster.pk).kubeconfig == KUBECONFIG


def test_keys_can_be_rotated(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    cluster = Cluster.objects.create(name="prod", kubeconfig=KUBECONFIG)
    settings.PORTAL_ENCRYPTION_KEYS = [new, old]
    assert Cluster.objects.get(pk=cluster.pk).kubeconfig == KUBECONFIG
    settings.PORTAL_ENCRYPTION_KEYS = [new]
    # The old key is gone: the row still loads, its kubeconfig cannot be used, and saving the row keeps it.
    unreadable = Cluster.objects.get(pk=cluster.pk)
    assert isinstance(unreadable.kubeconfig, crypto.UnreadableSecret)
    with pytest.raises(PermanentClusterError, match="encryption keys changed"):
        unreadable.client()
    unreadable.save()
    settings.PORTAL_ENCRYPTION_KEYS = [new, old]
    assert Cluster.objects.get(pk=cluster.pk).kubeconfig == KUBECONFIG


def test_a_bad_key_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.PORTAL_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")
