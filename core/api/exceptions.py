"""JSON errors for the API: domain errors become 409/403 with a message; validation errors name their fields.

Every error the API answers is JSON and rolls back the request's transaction (as DRF does for its own errors).
"""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import Conflict, DomainError, InvalidTransition, NotAllowed


def _validation_data(exc: DjangoValidationError) -> dict:
    """``{"field": ["message", ...]}``; errors of no particular field go under DRF's non-field key."""
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    data = exc.message_dict
    if NON_FIELD_ERRORS in data:
        data[api_settings.NON_FIELD_ERRORS_KEY] = data.pop(NON_FIELD_ERRORS)
    return data


def _domain_response(exc) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_data(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, NotAllowed):
        return Response({"detail": str(exc.message)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, InvalidTransition) and exc.field:
        return Response({exc.field: [str(exc.message)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, InvalidTransition) and exc.current:
        return Response({"detail": str(exc.message), "status": exc.current}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, (InvalidTransition, Conflict, DomainError)):
        return Response({"detail": str(exc.message)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoPermissionDenied):
        return Response({"detail": str(exc) or str(_("Permission denied."))}, status=status.HTTP_403_FORBIDDEN)
    return None


def exception_handler(exc, context):
    """DRF's ``EXCEPTION_HANDLER``: domain and Django errors first, then DRF's own handling."""
    response = _domain_response(exc)
    if response is not None:
        set_rollback()
        return response
    return drf_exception_handler(exc, context)
