"""French is complete: no untranslated or fuzzy message, and the compiled catalogue matches the source."""

import gettext
import re
from pathlib import Path

import pytest
from django.utils import translation

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "fr" / "LC_MESSAGES"


def entries():
    """(msgid, msgstr, flags) of every entry of the .po file, multi-line strings joined."""
    text = (LOCALE / "django.po").read_text()
    for block in text.split("\n\n"):
        flags = " ".join(line for line in block.splitlines() if line.startswith("#,"))
        if "msgid_plural" in block:
            flags += " plural"
        msgid = "".join(re.findall(r'^(?:msgid|msgid_plural)? ?"(.*)"$', block.split("msgstr")[0], re.M))
        msgstr = "".join(re.findall(r'"(.*)"$', "msgstr".join(block.split("msgstr")[1:]), re.M))
        if "msgid" in block:
            yield msgid, msgstr, flags


def test_every_message_is_translated_and_none_is_fuzzy():
    missing = [msgid for msgid, msgstr, flags in entries() if msgid and not msgstr]
    fuzzy = [msgid for msgid, _msgstr, flags in entries() if "fuzzy" in flags and msgid]
    assert missing == []
    assert fuzzy == []


def test_the_compiled_catalogue_is_up_to_date():
    with (LOCALE / "django.mo").open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    stale = [msgid for msgid, msgstr, flags in entries() if msgid and "\\" not in msgid and "plural" not in flags
             and catalogue.gettext(msgid) == msgid and msgstr != msgid]  # fmt: skip
    assert stale == [], "run `make messages` to compile the catalogue"


def test_plural_messages_are_compiled():
    with (LOCALE / "django.mo").open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    singular = "%(n)d vulnerability at %(severity)s"
    assert catalogue.ngettext(singular, "%(n)d vulnerabilities at %(severity)s", 2) == (
        "%(n)d vulnérabilités de gravité %(severity)s"
    )


@pytest.mark.parametrize(("english", "french"), [("Approve", "Approuver"), ("Instances", "Instances")])
def test_django_serves_french(english, french):
    with translation.override("fr"):
        assert translation.gettext(english) == french
