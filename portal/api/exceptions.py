"""JSON errors for the API: domain errors become 409/403 with a message; validation errors name their fields."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from instances.exceptions import Conflict, DomainError, InvalidTransition, NotAllowed


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        data = exc.message_dict if hasattr(exc, "message_dict") else {"non_field_errors": exc.messages}
        return Response(data, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, NotAllowed):
        return Response({"detail": str(exc.message)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, InvalidTransition) and exc.field:
        return Response({exc.field: [str(exc.message)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (InvalidTransition, Conflict, DomainError)):
        return Response({"detail": str(exc.message)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoPermissionDenied):
        return Response({"detail": str(exc) or "Permission denied."}, status=status.HTTP_403_FORBIDDEN)
    return drf_exception_handler(exc, context)
