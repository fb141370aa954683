from .applications import Application, ApplicationVersion
from .change_requests import ChangeRequest
from .instances import Instance

__all__ = ["Application", "ApplicationVersion", "ChangeRequest", "Instance"]
