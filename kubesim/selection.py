"""Label and field selectors as the Kubernetes API server parses them (the subset clients actually send)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_KEY = r"[A-Za-z0-9][A-Za-z0-9._/-]*"
_VALUE = r"[A-Za-z0-9._-]*"
_SET_TERM = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQUALITY_TERM = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_EXISTS_TERM = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")

# Field selectors the emulator can evaluate on every kind; the real server adds a few per kind (status.phase on
# pods, type on secrets...) which we answer with the same 400 the real server gives for an unknown field label.
FIELD_PATHS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


class SelectorError(ValueError):
    """The selector does not parse; the server answers 400 BadRequest with this message."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!exists" ("=" and "!=" are stored as "in"/"notin" with one value)
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # notin, like the API server


def _split_terms(text: str) -> list[str]:
    """Split on the commas that separate requirements, not those inside `in (a,b)` value sets."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    terms.append("".join(current).strip())
    return [t for t in terms if t]


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k` into requirements (all must match)."""
    requirements = []
    for term in _split_terms(text or ""):
        if match := _SET_TERM.match(term):
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append(Requirement(match["key"], match["op"], values))
        elif match := _EQUALITY_TERM.match(term):
            op = "notin" if match["op"] == "!=" else "in"
            requirements.append(Requirement(match["key"], op, frozenset([match["value"]])))
        elif match := _EXISTS_TERM.match(term):
            requirements.append(Requirement(match["key"], "!exists" if match["neg"] else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return requirements


def label_matcher(text: str | None) -> Callable[[dict], bool]:
    """A predicate on a whole object that applies a label selector to its `metadata.labels`."""
    requirements = parse_label_selector(text)

    def matches(obj: dict) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches


def field_matcher(text: str | None) -> Callable[[dict], bool]:
    """A predicate on a whole object for `metadata.name=x,metadata.namespace!=y`."""
    checks = []
    for term in _split_terms(text or ""):
        match = re.match(r"^(?P<field>[A-Za-z.]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*)$", term)
        if not match:
            raise SelectorError(f"invalid field selector: {term!r}")
        if match["field"] not in FIELD_PATHS:
            raise SelectorError(f"field label not supported: {match['field']}")
        checks.append((FIELD_PATHS[match["field"]], match["op"] == "!=", match["value"]))

    def matches(obj: dict) -> bool:
        for (section, key), negate, value in checks:
            actual = (obj.get(section) or {}).get(key) or ""
            if (actual == value) == negate:
                return False
        return True

    return matches
