"""Serializer fields shared by the API: strict strings and explicit time zones on the way in and out."""

import datetime
import zoneinfo

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would quietly turn ``123`` into ``"123"``."""

    default_error_messages = {"invalid": _("Expected a string.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PortalDateTimeField(serializers.DateTimeField):
    """ISO 8601 input; a value without an offset is read in the portal's time zone (``settings.TIME_ZONE``).

    DRF would use the *active* time zone, which a middleware may change per request; automation needs one
    fixed rule, the same as the legacy instructions file.
    """

    def default_timezone(self):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)

    def enforce_timezone(self, value):
        aware = super().enforce_timezone(value)
        # A wall-clock time repeated (autumn) or skipped (spring) by a clock change has two candidate offsets.
        # DRF means to refuse such times, but its check relies on comparisons that PEP 495 makes always unequal
        # for them, so it lets both through; zoneinfo would then pick one silently. Refuse them, as Django's
        # forms do.
        if timezone.is_naive(value) and _has_two_offsets(aware):
            self.fail("make_aware", timezone=aware.tzinfo)
        return aware


def _has_two_offsets(aware: datetime.datetime) -> bool:
    return aware.replace(fold=1 - aware.fold).utcoffset() != aware.utcoffset()


class UTCDateTimeField(serializers.DateTimeField):
    """Output in UTC (``2026-12-01T11:00:00Z``) whatever the portal's time zone, so scripts compare easily."""

    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", datetime.UTC)
        super().__init__(**kwargs)
