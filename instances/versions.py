"""Version strings: validation and an order that sorts 1.2.10 after 1.2.9."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

VERSION_RE = re.compile(r"^(?P<numbers>\d{1,6}(?:\.\d{1,6}){0,3})(?P<suffix>[-+][0-9A-Za-z.-]{1,40})?$")


def validate_version(value: str) -> None:
    if not VERSION_RE.match(value or ""):
        raise ValidationError(
            _("%(value)s is not a version (expected numbers separated by dots, such as 1.2.6)."),
            params={"value": value},
        )


def version_sort_key(value: str) -> str:
    """A string that orders versions numerically; a release sorts after its pre-releases."""
    match = VERSION_RE.match(value)
    if not match:
        return ""
    numbers = [int(part) for part in match["numbers"].split(".")]
    numbers += [0] * (4 - len(numbers))
    key = ".".join(f"{n:06d}" for n in numbers)
    suffix = match["suffix"] or ""
    # "~" sorts after every character a suffix may hold, so 1.2.6 > 1.2.6-rc1.
    return key + ("-" + suffix[1:] if suffix.startswith("-") else "~" + suffix[1:])
