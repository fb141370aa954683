from portal.models.organisations import is_maintainer


def portal(request):
    """Facts every page needs to draw its navigation."""
    user = getattr(request, "user", None)
    return {"is_maintainer": bool(user and is_maintainer(user))}
