"""Behaviour shared by the API's viewsets."""

from django.http import Http404


class SafeLookupMixin:
    """A lookup value PostgreSQL cannot even compare (a NUL byte) is simply not found, not a server error.

    DRF turns ``ValueError``/``TypeError`` of a lookup into 404 but not the database's ``DataError`` that a NUL
    byte in a text comparison raises on PostgreSQL.
    """

    def get_object(self):
        value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        if isinstance(value, str) and "\x00" in value:
            raise Http404
        return super().get_object()
