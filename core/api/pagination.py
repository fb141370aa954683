"""Pagination of every list of the API."""

from rest_framework.pagination import LimitOffsetPagination


class PortalPagination(LimitOffsetPagination):
    """``?limit=`` (50 by default, at most 500) and ``?offset=``: a larger limit is lowered to 500, not refused,
    so that a script asking for "everything" gets pages instead of an error or an answer the server cannot build."""

    max_limit = 500
