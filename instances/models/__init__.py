from .applications import Application, ApplicationComponent, ApplicationVersion
from .change_requests import ChangeRequest
from .clusters import Cluster
from .instances import Instance
from .instructions import InstructionSource
from .operations import Backup, Operation, RolloutSnapshot

__all__ = [
    "Application",
    "ApplicationComponent",
    "ApplicationVersion",
    "Backup",
    "ChangeRequest",
    "Cluster",
    "Instance",
    "InstructionSource",
    "Operation",
    "RolloutSnapshot",
]
