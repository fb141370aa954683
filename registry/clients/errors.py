"""What can go wrong talking to a registry, each with a message a user can act on (no secret in it)."""

from django.utils.translation import gettext_lazy as _


class RegistryError(Exception):
    """A registry call failed; ``str()`` is a clear message for the page and the sync record."""

    default_message = _("The registry answered with an error.")

    def __init__(self, detail: str = ""):
        self.detail = detail
        super().__init__(detail)

    def __str__(self) -> str:
        return f"{self.default_message} {self.detail}".strip()


class RegistryUnreachable(RegistryError):
    default_message = _("The registry cannot be reached.")


class RegistryUnauthorised(RegistryError):
    default_message = _("The registry refused the portal's credentials.")


class RepositoryNotFound(RegistryError):
    default_message = _("The repository does not exist in the registry.")


class MalformedAnswer(RegistryError):
    default_message = _("The registry's answer could not be read.")


class RegistryUnavailable(RegistryError):
    default_message = _("The registry kept failing (server error or rate limit).")
