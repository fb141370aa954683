from core.models.organisations import is_maintainer


def review_queue(request):
    """The approval queue's length, for the navigation badge of maintainers."""
    user = getattr(request, "user", None)

    def review_count() -> int:
        # Counted only when a page draws the badge (templates call callables), and only for maintainers.
        from instances.models import ChangeRequest

        return ChangeRequest.objects.awaiting_review().count() if user and is_maintainer(user) else 0

    return {"review_count": review_count}
