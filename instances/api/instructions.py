"""The instruction file over the API: import one (POST) and export the open scheduled requests (GET).

``POST instructions/import/`` takes the file as ``text/plain``, as a multipart ``file`` field, or as JSON
``{"text": "..."}``; ``?dry_run=true`` saves nothing. It always answers 200 with the per-line report (a dry run
too, and a file whose every line is in error: the report says so line by line); 400 only when the request itself is
wrong (no text, a file too big or not UTF-8, an unknown ``?application=``). Tenancy is the pages': another
organisation's instance is reported as unknown.
"""

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, PermissionDenied, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core.audit import AuditContext
from core.models.organisations import requestable_organisations
from instances.instructions.export import export_text
from instances.instructions.importer import import_instructions
from instances.instructions.parser import InstructionFileError, check_size, decode
from instances.instructions.report import LineStatus
from instances.models import Application

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class PlainTextParser(BaseParser):
    """A ``text/plain`` body as a string: UTF-8 (a byte order mark is dropped), at most
    ``PORTAL_INSTRUCTIONS_MAX_BYTES`` (one byte more is read, never the whole of a bigger body)."""

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return ""
        max_bytes = settings.PORTAL_INSTRUCTIONS_MAX_BYTES
        try:
            return decode(stream.read(max_bytes + 1), max_bytes=max_bytes)
        except InstructionFileError as refused:
            raise ParseError(refused.message.render()) from None


class PlainTextRenderer(BaseRenderer):
    """Errors of the export endpoint for a client that accepts only text: their message, as text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "detail" in data:
            data = data["detail"]
        return str(data if data is not None else "").encode(self.charset)


class LineSerializer(serializers.Serializer):
    """One line of the report (for the schema; the view answers the report as it is)."""

    line = serializers.IntegerField(
        allow_null=True, help_text="Null for a request cancelled because its line left a git source's file."
    )
    status = serializers.ChoiceField(choices=LineStatus.choices)
    request = serializers.IntegerField(allow_null=True, help_text="The request filed, matched or cancelled.")
    message = serializers.CharField()
    warning = serializers.CharField(allow_null=True)
    instruction = serializers.CharField(help_text="The line as read (blank for a cancelled request).")


class ImportReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    errors = serializers.IntegerField()
    warnings = serializers.IntegerField()
    lines = LineSerializer(many=True)


def _flag(value: str | None, name: str) -> bool:
    value = (value or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValidationError({name: [_("Use true or false.")]})


class InstructionImportView(APIView):
    """Import an instruction file: every line becomes a change request for review, or is reported as why not."""

    parser_classes = [PlainTextParser, *api_settings.DEFAULT_PARSER_CLASSES]

    @extend_schema(
        operation_id="instructions_import",
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, description="Report what would happen, save nothing."),
            OpenApiParameter("application", OpenApiTypes.STR, description="Slug of the application of C lines."),
        ],
        request={
            "text/plain": OpenApiTypes.STR,
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
            "application/json": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
        responses={
            200: ImportReportSerializer,
            400: OpenApiResponse(description="No text, or a file refused whole."),
            403: OpenApiResponse(description="The caller files requests for no organisation."),
        },
    )
    def post(self, request):
        # As on the page: only who may file for some organisation imports (a viewer's lines would all be refused).
        if not requestable_organisations(request.user).exists():
            raise PermissionDenied(_("Only functional admins and maintainers can import instructions."))
        dry_run = _flag(request.query_params.get("dry_run"), "dry_run")
        application = None
        slug = request.query_params.get("application")
        if slug:
            # PostgreSQL cannot even compare a NUL byte: such a slug is simply not found.
            application = None if "\x00" in slug else Application.objects.filter(slug=slug).first()
            if application is None:
                raise ValidationError({"application": [_("There is no application with this slug.")]})
        try:
            report = import_instructions(
                AuditContext.from_request(request), self._text(request), dry_run=dry_run, application=application
            )
        except InstructionFileError as refused:
            return Response({"detail": refused.message.render()}, status=status.HTTP_400_BAD_REQUEST)
        return Response(report.as_dict(), status=status.HTTP_200_OK)

    def _text(self, request) -> str:
        data = request.data
        if isinstance(data, str):
            return data
        max_bytes = settings.PORTAL_INSTRUCTIONS_MAX_BYTES
        upload = request.FILES.get("file")
        if upload is not None:
            check_size(upload.size, max_bytes)
            return decode(upload.read(max_bytes + 1), max_bytes=max_bytes)
        text = data.get("text") if hasattr(data, "get") else None
        if not isinstance(text, str):
            raise ValidationError(
                {"text": [_('Send the instructions as text/plain, as a multipart "file", or as JSON {"text": "…"}.')]}
            )
        return text


class InstructionExportView(APIView):
    """The open scheduled requests the caller may see, in the instruction format (``text/plain``)."""

    renderer_classes = [JSONRenderer, PlainTextRenderer]

    @extend_schema(operation_id="instructions_export", responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request):
        return HttpResponse(export_text(request.user), content_type="text/plain; charset=utf-8")
