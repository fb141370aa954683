"""Kubernetes fixtures: a fresh API emulator per test, and clients that talk to it over real HTTP.

Enable with `pytest_plugins = ["tests.kube_fixtures"]` (in conftest.py or a test module).
"""

import kubernetes
import pytest

from kubesim import KubernetesEmulator


@pytest.fixture
def kube_emulator():
    """A started `KubernetesEmulator` on 127.0.0.1 and a random port, stopped after the test."""
    with KubernetesEmulator() as emulator:
        yield emulator


@pytest.fixture
def kube_api_client(kube_emulator):
    """The official client's `ApiClient` pointed at the emulator (no credentials, plain HTTP)."""
    configuration = kubernetes.client.Configuration()
    configuration.host = kube_emulator.url
    configuration.verify_ssl = False
    api_client = kubernetes.client.ApiClient(configuration)
    yield api_client
    api_client.close()
