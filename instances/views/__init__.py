"""Views of the browser UI for instances and change requests (see instances.urls for the map)."""

from .change_requests import (
    RequestApproveView,
    RequestCancelView,
    RequestDetailView,
    RequestListView,
    RequestRejectView,
)
from .engine import ClusterCheckView, ClusterListView, InstanceResyncView, InstanceRolloutView, OperationDetailView
from .instances import (
    InstanceDetailView,
    InstanceListView,
    RequestBackupView,
    RequestCreateView,
    RequestDeleteView,
    RequestUpdateView,
)
from .registry import OverwriteResolveView, RegistryDetailView, RegistryListView, RegistrySyncView

__all__ = [
    "ClusterCheckView",
    "ClusterListView",
    "InstanceDetailView",
    "InstanceListView",
    "InstanceResyncView",
    "InstanceRolloutView",
    "OperationDetailView",
    "OverwriteResolveView",
    "RegistryDetailView",
    "RegistryListView",
    "RegistrySyncView",
    "RequestApproveView",
    "RequestBackupView",
    "RequestCancelView",
    "RequestCreateView",
    "RequestDeleteView",
    "RequestDetailView",
    "RequestListView",
    "RequestRejectView",
    "RequestUpdateView",
]
