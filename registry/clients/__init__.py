"""Registry clients: one class per registry kind, each answering with :class:`~registry.clients.base.RemoteTag`."""

from registry.choices import RegistryKind
from registry.clients.base import RegistryClient
from registry.clients.distribution import DistributionClient
from registry.clients.harbor import HarborClient
from registry.clients.quay import QuayClient

CLIENTS: dict[str, type[RegistryClient]] = {
    RegistryKind.DISTRIBUTION: DistributionClient,
    RegistryKind.QUAY: QuayClient,
    RegistryKind.HARBOR: HarborClient,
}


def client_for(registry) -> RegistryClient:
    """A client for a :class:`~registry.models.Registry` row, with the portal's timeouts and retries."""
    return CLIENTS[registry.kind].for_registry(registry)
