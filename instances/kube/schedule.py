"""CronJob schedules: the five-field cron syntax Kubernetes accepts, and IANA time zones."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping

from instances.kube.names import InvalidSpec

_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = {name: number for number, name in enumerate(_MONTHS, start=1)}
_DAY_NAMES = {name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (name, lowest, highest, accepted names) of the five standard fields; day of week 7 is Sunday too.
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day of week", 0, 7, _DAY_NAMES),
)


def validate_cron(schedule: str) -> str:
    """Check a CronJob schedule: five standard fields or a macro such as `@daily`.

    The time zone is a separate field (`timeZone`): Kubernetes rejects `TZ=`/`CRON_TZ=` inside the schedule.
    """
    if not isinstance(schedule, str) or not schedule.strip():
        raise InvalidSpec("The backup schedule is empty; give a cron expression such as '0 2 * * *'.")
    text = schedule.strip()
    if text.lower() in _CRON_MACROS:
        return text
    if "TZ=" in text.upper():
        raise InvalidSpec(f"Backup schedule {schedule!r}: set the time zone separately, not with TZ= in the schedule.")
    parts = text.split()
    if len(parts) != 5:
        raise InvalidSpec(
            f"Backup schedule {schedule!r} must have 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(parts)}."
        )
    for part, (name, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            _validate_cron_item(item, name, low, high, names, schedule)
    return text


def _validate_cron_item(item: str, name: str, low: int, high: int, names: Mapping[str, int], schedule: str) -> None:
    def number(token: str) -> int:
        if token.lower() in names:
            return names[token.lower()]
        if not token.isdigit():
            raise InvalidSpec(f"Backup schedule {schedule!r}: {token!r} is not a valid {name}.")
        value = int(token)
        if not low <= value <= high:
            raise InvalidSpec(f"Backup schedule {schedule!r}: {name} {value} is outside {low}-{high}.")
        return value

    span, slash, step = item.partition("/")
    if slash and (not step.isdigit() or int(step) == 0):
        raise InvalidSpec(f"Backup schedule {schedule!r}: step {step!r} of the {name} must be a positive number.")
    if span == "*":
        return
    first, dash, last = span.partition("-")
    start = number(first)
    if dash and number(last) < start:
        raise InvalidSpec(f"Backup schedule {schedule!r}: the {name} range {span!r} runs backwards.")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(name: str) -> str:
    if name not in _time_zones():
        raise InvalidSpec(f"Time zone {name!r} is unknown (use an IANA name).")
    return name
