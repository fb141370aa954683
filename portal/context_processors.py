from portal.models.organisations import is_maintainer


def portal(request):
    """Facts every page needs to draw its navigation."""
    user = getattr(request, "user", None)
    maintainer = bool(user and is_maintainer(user))

    def review_count() -> int:
        # Counted only when a page draws the navigation badge (templates call callables), and only for maintainers.
        from instances.models import ChangeRequest

        return ChangeRequest.objects.awaiting_review().count() if maintainer else 0

    return {"is_maintainer": maintainer, "review_count": review_count}
