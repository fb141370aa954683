from core.models.organisations import is_maintainer


def roles(request):
    """Whether the user is a maintainer: every page's navigation depends on it."""
    user = getattr(request, "user", None)
    return {"is_maintainer": bool(user and is_maintainer(user))}
