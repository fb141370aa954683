"""Reading the legacy instruction format, without the database.

One instruction per line, ``action|instance|version|dd/MM/yyyy-HH:MM`` (e.g. ``U|unistra|1.1.17|09/10/2023-12:00``),
the time in the portal's time zone. Tolerated, because the files are typed by hand and come from Windows as well:
CRLF line ends, a UTF-8 byte order mark, spaces around fields, lower-case actions and instance names, blank lines,
``#`` comments (a whole line, or the end of a line: no field may contain ``#``), one-digit days, months and hours,
``12h00`` or ``12h`` for ``12:00``, and a space instead of the ``-`` between date and time. The version of a ``D``
line may be empty.

Every problem is reported on its line with a translatable :class:`~core.messages.Message`; only a file that is too
big, or not UTF-8 text, is refused whole (:class:`InstructionFileError`).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import unicodedata
import zoneinfo

from core.messages import Message, msg
from instances.choices import RequestKind

ACTIONS = {"C": RequestKind.CREATE, "U": RequestKind.UPDATE, "D": RequestKind.DELETE}
LETTERS = {kind: letter for letter, kind in ACTIONS.items()}
FORMAT = "action|instance|version|dd/MM/yyyy-HH:MM"
# Longer lines are no instruction anyone typed; the report quotes at most this much of a line.
MAX_LINE_LENGTH = 500

_DATE = re.compile(r"^(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})(?:(?:\s*-\s*|\s+)(?P<time>.*))?$")
_TIME = re.compile(r"^(?P<hour>\d{0,2})\s*(?P<sep>[:hH])\s*(?P<minute>\d{2})?$")


class InstructionFileError(Exception):
    """The file as a whole is refused (too big, too many lines, not text): nothing of it is imported."""

    def __init__(self, message: Message):
        self.message = message
        super().__init__(message.english)


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One valid line: what to do, to which instance, which version, when (aware, in the portal's zone)."""

    line: int
    kind: str
    instance: str
    version: str
    when: datetime.datetime
    text: str

    @property
    def when_text(self) -> str:
        return format_time(self.when)


@dataclasses.dataclass(frozen=True)
class LineError:
    line: int
    message: Message
    text: str


@dataclasses.dataclass
class Parsed:
    instructions: list[Instruction]
    errors: list[LineError]


def format_time(when: datetime.datetime, zone: zoneinfo.ZoneInfo | None = None) -> str:
    """``dd/MM/yyyy-HH:MM`` in ``zone`` (default: the zone ``when`` carries)."""
    when = when.astimezone(zone) if zone else when
    # Not strftime: its %Y does not pad years before 1000 on every platform.
    return f"{when.day:02d}/{when.month:02d}/{when.year:04d}-{when.hour:02d}:{when.minute:02d}"


def decode(data: bytes, *, max_bytes: int) -> str:
    """The file's text: UTF-8 (a byte order mark is dropped); too big or not UTF-8 refuses the whole file."""
    check_size(len(data), max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InstructionFileError(
            Message(msg("The file is not UTF-8 text (byte %(position)d cannot be read)."), {"position": exc.start + 1})
        ) from None


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise InstructionFileError(
            Message(
                msg("The file is too big: %(size)d bytes, at most %(max)d are accepted. Nothing was imported."),
                {"size": size, "max": max_bytes},
            )
        )


def split_lines(text: str, *, max_lines: int) -> list[str]:
    """The lines as an editor numbers them (``\\r\\n``, ``\\r`` and ``\\n`` end a line, nothing else does)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start another
    if len(lines) > max_lines:
        raise InstructionFileError(
            Message(
                msg("The file has %(count)d lines, at most %(max)d are accepted. Nothing was imported."),
                {"count": len(lines), "max": max_lines},
            )
        )
    return lines


def parse(text: str, *, zone: zoneinfo.ZoneInfo, max_lines: int) -> Parsed:
    """Every instruction of ``text`` and every line in error, by line number (1-based)."""
    parsed = Parsed([], [])
    for number, raw in enumerate(split_lines(text, max_lines=max_lines), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        quoted = _printable(raw.strip()[:MAX_LINE_LENGTH])
        if len(raw) > MAX_LINE_LENGTH:
            message = Message(msg("The line is longer than %(max)d characters."), {"max": MAX_LINE_LENGTH})
            parsed.errors.append(LineError(number, message, quoted))
            continue
        if quoted != raw.strip():
            message = Message(msg("The line holds a character that is not text (a control character)."))
            parsed.errors.append(LineError(number, message, quoted))
            continue
        try:
            parsed.instructions.append(parse_line(number, content, zone))
        except _LineProblem as problem:
            parsed.errors.append(LineError(number, problem.message, quoted))
    return parsed


def _printable(text: str) -> str:
    """``text`` with control characters and lone surrogates (which no database column or JSON answer takes)
    replaced by U+FFFD; tabs stay."""
    return "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cs") and c != "\t" else c for c in text)


class _LineProblem(Exception):
    def __init__(self, message: Message):
        self.message = message


def parse_line(number: int, content: str, zone: zoneinfo.ZoneInfo) -> Instruction:
    fields = [field.strip() for field in content.split("|")]
    if len(fields) != 4:
        raise _LineProblem(
            Message(
                msg("Expected 4 fields separated by | (%(format)s), found %(count)d."),
                {"format": FORMAT, "count": len(fields)},
            )
        )
    action, instance, version, when = fields
    kind = ACTIONS.get(action.upper())
    if kind is None:
        raise _LineProblem(
            Message(msg("Unknown action “%(action)s”: use C (create), U (update) or D (delete)."), {"action": action})
        )
    if not instance:
        raise _LineProblem(Message(msg("The instance name is missing.")))
    if not version and kind != RequestKind.DELETE:
        raise _LineProblem(Message(msg("The version is missing (only a D line may leave it empty).")))
    return Instruction(number, kind, instance.lower(), version, parse_when(when, zone), content)


def parse_when(value: str, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """``dd/MM/yyyy-HH:MM`` (with the tolerances of the module) as an aware datetime of ``zone``."""
    if not value:
        raise _LineProblem(Message(msg("The date is missing (dd/MM/yyyy-HH:MM).")))
    match = _DATE.match(value)
    if match is None:
        raise _LineProblem(Message(msg("“%(value)s” is not a date and time dd/MM/yyyy-HH:MM."), {"value": value}))
    if not match["time"]:
        raise _LineProblem(Message(msg("The time is missing after the date “%(value)s” (HH:MM)."), {"value": value}))
    day, month, year = int(match["day"]), int(match["month"]), int(match["year"])
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        raise _LineProblem(
            Message(msg("%(date)s does not exist."), {"date": f"{day:02d}/{month:02d}/{year:04d}"})
        ) from None
    return _combine(date, _parse_time(match["time"].strip()), zone)


def _parse_time(value: str) -> datetime.time:
    match = _TIME.match(value)
    if match is None:
        raise _LineProblem(Message(msg("“%(value)s” is not a time: write HH:MM."), {"value": value}))
    if not match["hour"]:
        raise _LineProblem(Message(msg("The time “%(value)s” has no hours: write HH:MM."), {"value": value}))
    if match["minute"] is None and match["sep"] == ":":
        raise _LineProblem(Message(msg("The time “%(value)s” has no minutes: write HH:MM."), {"value": value}))
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    if hour > 23 or minute > 59:
        raise _LineProblem(Message(msg("%(time)s is not a time of the day."), {"time": f"{hour:02d}:{minute:02d}"}))
    return datetime.time(hour, minute)


def _combine(date: datetime.date, time: datetime.time, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The wall-clock time of ``zone``; one that the clocks skip (spring forward) is refused, as the forms do."""
    naive = datetime.datetime.combine(date, time)
    aware = naive.replace(tzinfo=zone)
    try:
        round_trip = aware.astimezone(datetime.UTC).astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        raise _LineProblem(Message(msg("%(when)s is out of range."), {"when": format_time(naive)})) from None
    if round_trip != naive:
        raise _LineProblem(
            Message(
                msg("%(when)s does not exist in %(zone)s (the clocks move forward)."),
                {"when": format_time(naive), "zone": str(zone)},
            )
        )
    return aware
