"""Domain errors: raised by guarded model methods, turned into form errors in the UI and 409/403 in the API."""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A request that the domain refuses; the message is shown to the user."""

    default_message = _("This action is not allowed.")

    def __init__(self, message=None, *, field: str | None = None):
        self.message = message or self.default_message
        self.field = field
        super().__init__(str(self.message))


class InvalidTransition(DomainError):
    """The object is not in a state that allows the action (HTTP 409)."""

    default_message = _("This request cannot make that transition in its current state.")

    def __init__(self, message=None, *, field: str | None = None, current: str | None = None):
        super().__init__(message, field=field)
        self.current = current  # the state the object is in (told to API clients with the 409)


class Conflict(DomainError):
    """The action clashes with another object, e.g. an open request on the same instance (HTTP 409)."""


class NotAllowed(DomainError):
    """The actor may see the object but not do this to it (HTTP 403)."""

    default_message = _("You are not allowed to do this.")
