"""The API's JSON parser: a body too deeply nested is a clear 400, never a server error."""

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_depth_exceeds(value, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests lists and objects deeper than ``limit``; iterative, so that the check
    itself cannot exhaust the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than ``PORTAL_API_MAX_JSON_DEPTH``.

    Python's decoder raises ``RecursionError`` on very deep input (thousands of ``[``), which DRF does not catch.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.PORTAL_API_MAX_JSON_DEPTH
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
            too_deep = True
        else:
            too_deep = json_depth_exceeds(data, limit)
        if too_deep:
            raise ParseError(_("JSON parse error - nested deeper than %(limit)d levels.") % {"limit": limit})
        return data
