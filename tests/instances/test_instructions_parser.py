"""The instruction format without the database: every tolerated form, every error, the limits of a file."""

import datetime
import zoneinfo

import pytest

from instances.choices import RequestKind
from instances.instructions.parser import InstructionFileError, decode, format_time, parse

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def one(text: str):
    parsed = parse(text, zone=PARIS, max_lines=100)
    assert not parsed.errors, [e.message.english for e in parsed.errors]
    assert len(parsed.instructions) == 1
    return parsed.instructions[0]


def error_of(text: str) -> str:
    parsed = parse(text, zone=PARIS, max_lines=100)
    assert not parsed.instructions
    assert len(parsed.errors) == 1
    return parsed.errors[0].message.english


NOON = datetime.datetime(2023, 10, 9, 12, 0, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("text", "kind", "instance", "version", "when"),
    [
        ("U|unistra|1.1.17|09/10/2023-12:00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|09/10/2023-12:00\t", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|09/10/2023-12:00\r\n", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("\ufeffU|unistra|1.1.17|09/10/2023-12:00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("  U | unistra |  1.1.17 | 09/10/2023-12:00  ", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("u|unistra|1.1.17|09/10/2023-12:00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|UniStra|1.1.17|09/10/2023-12:00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("c|unicaen|1.2.4|09/10/2023-12:00", RequestKind.CREATE, "unicaen", "1.2.4", NOON),
        ("D|unistra||09/10/2023-12:00", RequestKind.DELETE, "unistra", "", NOON),
        ("d|unistra|1.1.17|09/10/2023-12:00", RequestKind.DELETE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|9/10/2023-12:00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|09/10/2023-12:00 # before the exams", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|09/10/2023 12:00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|09/10/2023 - 12:00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|09/10/2023-12h00", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        ("U|unistra|1.1.17|09/10/2023-12h", RequestKind.UPDATE, "unistra", "1.1.17", NOON),
        (
            "U|unistra|1.1.17|09/10/2023-9:05",
            RequestKind.UPDATE,
            "unistra",
            "1.1.17",
            datetime.datetime(2023, 10, 9, 9, 5, tzinfo=PARIS),
        ),
        (
            "U|unistra|1.1.17|09/10/2023-23:59",
            RequestKind.UPDATE,
            "unistra",
            "1.1.17",
            datetime.datetime(2023, 10, 9, 23, 59, tzinfo=PARIS),
        ),
    ],
)
def test_tolerated_forms(text, kind, instance, version, when):
    instruction = one(text)
    assert (instruction.kind, instruction.instance, instruction.version) == (kind, instance, version)
    assert instruction.when == when
    assert instruction.when.utcoffset() == when.utcoffset()
    assert instruction.line == 1


def test_blank_lines_and_comments_are_ignored_and_lines_keep_their_numbers():
    text = "# header\r\n\r\n   \r\nU|a|1.0.0|01/01/2030-10:00\r\n# another\r\nD|b||02/01/2030-10:00\r\n"
    parsed = parse(text, zone=PARIS, max_lines=100)
    assert [(i.line, i.instance) for i in parsed.instructions] == [(4, "a"), (6, "b")]
    assert parsed.errors == []


def test_old_mac_line_ends_count_as_line_ends():
    parsed = parse("U|a|1.0.0|01/01/2030-10:00\rbad", zone=PARIS, max_lines=100)
    assert [i.line for i in parsed.instructions] == [1]
    assert [e.line for e in parsed.errors] == [2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X|unistra|1.1.17|09/10/2023-12:00", "Unknown action “X”: use C (create), U (update) or D (delete)."),
        ("|unistra|1.1.17|09/10/2023-12:00", "Unknown action “”"),
        ("UPDATE|unistra|1.1.17|09/10/2023-12:00", "Unknown action “UPDATE”"),
        ("U|unistra|1.1.17", "Expected 4 fields separated by | (action|instance|version|dd/MM/yyyy-HH:MM), found 3."),
        ("U|unistra|1.1.17|09/10/2023-12:00|", "found 5"),
        ("U unistra 1.1.17 09/10/2023-12:00", "found 1"),
        ("U||1.1.17|09/10/2023-12:00", "The instance name is missing."),
        ("U|unistra||09/10/2023-12:00", "The version is missing (only a D line may leave it empty)."),
        ("C|unistra||09/10/2023-12:00", "The version is missing"),
        ("U|unistra|1.1.17|", "The date is missing (dd/MM/yyyy-HH:MM)."),
        ("U|unistra|1.1.17|31/02/2023-12:00", "31/02/2023 does not exist."),
        ("U|unistra|1.1.17|29/02/2023-12:00", "29/02/2023 does not exist."),
        ("U|unistra|1.1.17|09/13/2023-12:00", "09/13/2023 does not exist."),
        ("U|unistra|1.1.17|09/10/2023", "The time is missing after the date “09/10/2023” (HH:MM)."),
        ("U|unistra|1.1.17|09/10/2023-", "The time is missing"),
        ("U|unistra|1.1.17|09/10/2023-:30", "The time “:30” has no hours: write HH:MM."),
        ("U|unistra|1.1.17|09/10/2023-h30", "has no hours"),
        ("U|unistra|1.1.17|09/10/2023-12:", "The time “12:” has no minutes: write HH:MM."),
        ("U|unistra|1.1.17|09/10/2023-12", "“12” is not a time: write HH:MM."),
        ("U|unistra|1.1.17|09/10/2023-12:5", "is not a time"),
        ("U|unistra|1.1.17|09/10/2023-noon", "is not a time"),
        ("U|unistra|1.1.17|09/10/2023-24:00", "24:00 is not a time of the day."),
        ("U|unistra|1.1.17|09/10/2023-12:60", "12:60 is not a time of the day."),
        ("U|unistra|1.1.17|2023-10-09 12:00", "“2023-10-09 12:00” is not a date and time dd/MM/yyyy-HH:MM."),
        ("U|unistra|1.1.17|09/10/23-12:00", "is not a date and time"),
        ("U|unistra|1.1.17|26/03/2023-02:30", "26/03/2023-02:30 does not exist in Europe/Paris (the clocks move"),
        ("U|unistra|1.1.17|01/01/0001-00:05", "01/01/0001-00:05 is out of range."),
        ("U|unistra|" + "1" * 600 + "|09/10/2023-12:00", "The line is longer than 500 characters."),
    ],
)
def test_errors_name_their_reason(text, expected):
    assert expected in error_of(text)


@pytest.mark.parametrize("text", ["U|uni\x00stra|1.1.17|09/10/2023-12:00", "U|unistra|1.1\ud800|09/10/2023-12:00"])
def test_control_characters_and_lone_surrogates_are_refused_and_not_echoed(text):
    parsed = parse(text, zone=PARIS, max_lines=10)
    assert parsed.errors[0].message.english == "The line holds a character that is not text (a control character)."
    assert "\ufffd" in parsed.errors[0].text and "\x00" not in parsed.errors[0].text
    parsed.errors[0].text.encode()  # storable and answerable as UTF-8


def test_errors_keep_their_line_number_and_text_and_do_not_stop_the_others():
    text = "U|a|1.0.0|01/01/2030-10:00\nZ|b|1|01/01/2030-10:00\nD|c||31/04/2030-10:00\nU|d|2.0.0|01/01/2030-10:00\n"
    parsed = parse(text, zone=PARIS, max_lines=100)
    assert [i.line for i in parsed.instructions] == [1, 4]
    assert [(e.line, e.text) for e in parsed.errors] == [(2, "Z|b|1|01/01/2030-10:00"), (3, "D|c||31/04/2030-10:00")]


def test_an_ambiguous_autumn_time_is_its_first_occurrence():
    instruction = one("U|a|1.0.0|29/10/2023-02:30")
    assert instruction.when.utcoffset() == datetime.timedelta(hours=2)


def test_times_follow_the_zone_given():
    instruction = parse("U|a|1.0.0|09/10/2023-12:00", zone=zoneinfo.ZoneInfo("UTC"), max_lines=10).instructions[0]
    assert instruction.when == datetime.datetime(2023, 10, 9, 12, 0, tzinfo=datetime.UTC)
    assert format_time(instruction.when, PARIS) == "09/10/2023-14:00"


def test_too_many_lines_refuses_the_file():
    with pytest.raises(InstructionFileError) as refused:
        parse("# c\n" * 11, zone=PARIS, max_lines=10)
    assert refused.value.message.english == "The file has 11 lines, at most 10 are accepted. Nothing was imported."
    assert len(parse("# c\n" * 10, zone=PARIS, max_lines=10).instructions) == 0


def test_decode_drops_the_bom_and_refuses_what_is_not_utf8_or_too_big():
    assert decode("\ufeffU|a|1|x".encode(), max_bytes=100) == "U|a|1|x"
    with pytest.raises(InstructionFileError) as not_text:
        decode(b"U|caf\xe9|1|x", max_bytes=100)
    assert "not UTF-8 text (byte 6" in not_text.value.message.english
    with pytest.raises(InstructionFileError) as too_big:
        decode(b"x" * 101, max_bytes=100)
    assert too_big.value.message.english.startswith("The file is too big: 101 bytes, at most 100")


def test_messages_are_translatable_and_keep_their_parameters():
    parsed = parse("X|a|1|01/01/2030-10:00", zone=PARIS, max_lines=10)
    stored = parsed.errors[0].message.as_json()
    assert stored["text"].startswith("Unknown action “%(action)s”")
    assert stored["params"] == {"action": "X"}
