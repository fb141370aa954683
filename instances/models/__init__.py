from .applications import Application, ApplicationComponent, ApplicationVersion
from .backups import Backup, BackupAlert
from .change_requests import ChangeRequest
from .clusters import Cluster
from .instances import Instance
from .instructions import InstructionSource
from .operations import Operation, RolloutSnapshot

__all__ = [
    "Application",
    "ApplicationComponent",
    "ApplicationVersion",
    "Backup",
    "BackupAlert",
    "ChangeRequest",
    "Cluster",
    "Instance",
    "InstructionSource",
    "Operation",
    "RolloutSnapshot",
]
