"""Who an email address names: script mixing and look-alike (confusable) accounts.

`whatsease.validation.email` already normalises every address (NFC, width
folding, case folding, IDNA for the domain) and refuses invisible, control and
bidi characters. Registration adds two checks from Unicode TR39 (Security
Mechanisms):

- the local part may not mix scripts (``cаse`` with a Cyrillic ``а``), except
  the mixes a language needs (Japanese, Chinese, Korean with Latin);
- its *skeleton* (every character replaced by the prototype it looks like,
  from Unicode's confusables.txt, shipped beside this module) must differ from
  every existing account's: the users collection keeps it under a unique index.
"""

from __future__ import annotations

import gzip
import unicodedata
from array import array
from functools import cache
from pathlib import Path

from confusable_homoglyphs import categories

CONFUSABLES_FILE = Path(__file__).with_name("confusables.txt.gz")
# Scripts that combine with any other: digits, punctuation, combining marks.
_NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})
# TR39's "highly restrictive" mixes: scripts that one language writes together.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


class Prototypes:
    """Unicode's confusables.txt: source character → the prototype it looks like.

    Kept as two strings and the targets' offsets (~0.1 MiB) rather than a dict of
    6,300 one-character strings (~1 MiB of every process)."""

    __slots__ = ("_offsets", "_sources", "_targets")

    def __init__(self, table: dict[str, str]) -> None:
        self._sources = "".join(table)
        self._targets = "".join(table.values())
        self._offsets = array("I", [0])
        for target in table.values():
            self._offsets.append(self._offsets[-1] + len(target))

    def __len__(self) -> int:
        return len(self._sources)

    def get(self, char: str, default: str) -> str:
        """The prototype of one character, or `default` if it has none."""
        i = self._sources.find(char)
        if i < 0:
            return default
        return self._targets[self._offsets[i] : self._offsets[i + 1]]


@cache
def _prototypes() -> Prototypes:
    """Read confusables.txt (once a process)."""
    table: dict[str, str] = {}
    with gzip.open(CONFUSABLES_FILE, "rt", encoding="utf-8-sig") as lines:
        for line in lines:
            data = line.split("#", 1)[0].strip()
            if not data:
                continue
            source, target, _kind = (part.strip() for part in data.split(";", 2))
            table[chr(int(source, 16))] = "".join(chr(int(c, 16)) for c in target.split())
    return Prototypes(table)


def skeleton(text: str) -> str:
    """TR39 skeleton, case-folded: two strings that look alike have the same skeleton.

    Case is folded before and after, since prototypes are sometimes capitals
    (``0`` → ``O``) and addresses are compared without case.
    """
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text.casefold())
    mapped = "".join(table.get(ch, ch) for ch in decomposed)
    return unicodedata.normalize("NFD", mapped).casefold()


def email_skeleton(email: str) -> str:
    """The skeleton of a normalised address: the local part's, and the (ASCII) domain."""
    local, _, domain = email.rpartition("@")
    return f"{skeleton(local)}@{domain}"


def scripts(text: str) -> set[str]:
    """The scripts of the letters in ``text`` (digits and punctuation belong to none)."""
    return set(categories.unique_aliases(text)) - _NEUTRAL_SCRIPTS


def mixes_scripts(text: str) -> bool:
    """True when ``text`` mixes scripts that no one language writes together."""
    found = scripts(text)
    return len(found) > 1 and not any(found <= allowed for allowed in _ALLOWED_MIXES)
