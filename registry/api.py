"""The registry's API: the tag check CI pipelines call before they push."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.clients.errors import RegistryError
from registry.guard import GuardError, UnknownRegistry, check


class TagCheckQuery(serializers.Serializer):
    repository = serializers.CharField(max_length=400, help_text="host/path, e.g. quay.io/smile/core")
    tag = serializers.CharField(max_length=128)


class TagCheckResult(serializers.Serializer):
    repository = serializers.CharField()
    tag = serializers.CharField()
    exists = serializers.BooleanField()
    digest = serializers.CharField(allow_null=True, help_text="sha256:… when the tag exists")


class ErrorDetail(serializers.Serializer):
    detail = serializers.CharField()


class TagCheckView(APIView):
    """``GET ?repository=host/path&tag=1.2.7`` -> ``{"exists": bool, "digest": str|null}``, asked of the registry
    now. 400 for a malformed question, 404 for a registry the portal does not know, 502 when it cannot answer."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[TagCheckQuery],
        responses={
            200: TagCheckResult,
            400: OpenApiResponse(description="A malformed question: the fields in error, or `detail`."),
            404: ErrorDetail,
            502: ErrorDetail,
        },
    )
    def get(self, request):
        query = TagCheckQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            result = check(query.validated_data["repository"], query.validated_data["tag"])
        except UnknownRegistry as error:
            return Response({"detail": str(error)}, status=status.HTTP_404_NOT_FOUND)
        except GuardError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        except RegistryError as error:
            return Response(
                {"detail": _("The registry could not answer: %(error)s") % {"error": error}},
                status=status.HTTP_502_BAD_GATEWAY,
            )
        return Response(result.as_json())
