"""URL map of the instance and change request pages."""

from django.urls import path

from instances import views
from instances.views import instructions, restore
from instances.views.backups import BackupDownloadView

app_name = "instances"

urlpatterns = [
    path("instances/", views.InstanceListView.as_view(), name="instance_list"),
    path("instances/new/", views.RequestCreateView.as_view(), name="request_create"),
    path("instances/<slug:slug>/", views.InstanceDetailView.as_view(), name="instance_detail"),
    path("instances/<slug:slug>/upgrade/", views.RequestUpdateView.as_view(), name="request_update"),
    path("instances/<slug:slug>/delete/", views.RequestDeleteView.as_view(), name="request_delete"),
    path("instances/<slug:slug>/backup/", views.RequestBackupView.as_view(), name="request_backup"),
    path("instances/<slug:slug>/backups/<int:pk>/download/", BackupDownloadView.as_view(), name="backup_download"),
    path("instances/<slug:slug>/restore/", restore.RequestRestoreView.as_view(), name="request_restore"),
    path("instances/<slug:slug>/drill/", restore.DrillView.as_view(), name="instance_drill"),
    path("drills/", restore.DrillView.as_view(), name="drills"),
    path("instances/<slug:slug>/rollout/", views.InstanceRolloutView.as_view(), name="instance_rollout"),
    path("instances/<slug:slug>/resync/", views.InstanceResyncView.as_view(), name="instance_resync"),
    path("operations/<int:pk>/", views.OperationDetailView.as_view(), name="operation_detail"),
    path("clusters/", views.ClusterListView.as_view(), name="cluster_list"),
    path("clusters/<int:pk>/check/", views.ClusterCheckView.as_view(), name="cluster_check"),
    path("registries/", views.RegistryListView.as_view(), name="registry_list"),
    path("registries/<int:pk>/", views.RegistryDetailView.as_view(), name="registry_detail"),
    path("registries/<int:pk>/sync/", views.RegistrySyncView.as_view(), name="registry_sync"),
    path("registries/alerts/<int:pk>/resolve/", views.OverwriteResolveView.as_view(), name="overwrite_resolve"),
    path("requests/", views.RequestListView.as_view(), name="request_list"),
    path("requests/<int:pk>/", views.RequestDetailView.as_view(), name="request_detail"),
    path("requests/<int:pk>/approve/", views.RequestApproveView.as_view(), name="request_approve"),
    path("requests/<int:pk>/reject/", views.RequestRejectView.as_view(), name="request_reject"),
    path("requests/<int:pk>/cancel/", views.RequestCancelView.as_view(), name="request_cancel"),
    path("instructions/", instructions.InstructionImportView.as_view(), name="instruction_import"),
    path("instructions/export/", instructions.InstructionExportView.as_view(), name="instruction_export"),
    path("instructions/sources/", instructions.InstructionSourceListView.as_view(), name="instruction_source_list"),
    path(
        "instructions/sources/new/",
        instructions.InstructionSourceCreateView.as_view(),
        name="instruction_source_create",
    ),
    path(
        "instructions/sources/<int:pk>/",
        instructions.InstructionSourceDetailView.as_view(),
        name="instruction_source_detail",
    ),
    path(
        "instructions/sources/<int:pk>/edit/",
        instructions.InstructionSourceUpdateView.as_view(),
        name="instruction_source_update",
    ),
    path(
        "instructions/sources/<int:pk>/import/",
        instructions.InstructionSourceImportView.as_view(),
        name="instruction_source_import",
    ),
]
