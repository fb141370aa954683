"""Sentences for users that are stored now and read later, each reader in their own language.

A background job cannot translate what it writes: it does not know who will read it. So it keeps a
:class:`Message` — the English sentence (the msgid, marked for ``makemessages`` with :func:`msg`) and its
parameters — and the page translates it when it is shown. The English rendering is stored too, for e-mails,
the API, logs and anything that reads plain text.

Parameters may be messages themselves (a reason inside a sentence); values that come from outside (a cluster's
own error text, kubectl's rollout status) are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils import translation
from django.utils.translation import gettext, gettext_noop

# Marks a msgid for translation without translating it now (``makemessages`` knows this name).
msg = gettext_noop


@dataclass(frozen=True)
class Message:
    """A translatable sentence with its ``%(name)s`` parameters."""

    text: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        # Stored as JSON: anything that is not a message, a number or a string is kept as its text now.
        params = {
            key: value if isinstance(value, Message | str | int | float | bool | type(None)) else str(value)
            for key, value in self.params.items()
        }
        object.__setattr__(self, "params", params)

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        """The sentence in the active language."""
        params = {key: str(value) if isinstance(value, Message) else value for key, value in self.params.items()}
        translated = gettext(self.text)
        try:
            return translated % params if params else translated
        except (KeyError, TypeError, ValueError):
            # A translation whose placeholders do not match must not hide the facts: fall back to English.
            return self.text % params if params else self.text

    @property
    def english(self) -> str:
        with translation.override("en"):
            return self.render()

    def as_json(self) -> dict:
        return {
            "text": self.text,
            "params": {
                key: value.as_json() if isinstance(value, Message) else value for key, value in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        params = {
            key: cls.from_json(value) if isinstance(value, Mapping) and "text" in value else value
            for key, value in (data.get("params") or {}).items()
        }
        return cls(data["text"], params)

    @classmethod
    def plain(cls, text: str) -> Message:
        """Text that is not translated (it came from outside the portal)."""
        return cls("%(text)s", {"text": text})


def label(choices, value: str) -> Message:
    """The label of a choice (``OperationKind.UPGRADE`` → "Upgrade"), to translate when it is read."""
    try:
        with translation.override("en"):
            return Message(str(choices(value).label))
    except ValueError:
        return Message.plain(value)


def render(stored: Mapping[str, Any] | None, fallback: str = "") -> str:
    """A stored message in the active language; ``fallback`` (the English text) when there is none."""
    if not stored:
        return fallback
    try:
        return Message.from_json(stored).render()
    except (KeyError, TypeError, AttributeError):
        return fallback
