"""The matching rule of ``search_messages`` and ``search_entries``, written once
(docs/contract.md, "Search").

Pure functions, no I/O. Every backend indexes the terms of ``index_terms`` and fetches the
messages holding any of a query's ``Query.candidates``; ``rank`` then decides, the same way
on every backend, which of them match and in which order. The model test uses ``score``
as its brute-force oracle.

- Text is normalised: Unicode NFC, then case-folded (``str.casefold``), then NFC again.
- A word is a maximal run of letters, digits and combining marks (``_`` and punctuation
  separate words). Words match whole: "cat" does not match "cats".
- Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) form
  runs of their own, matched as substrings of the message's normalised text: the query
  "東京" matches "東京都に". A run is one query word.
- A message matches when it contains at least one query word; its score is how many
  distinct query words it contains. Results: highest score first, then newest first
  (``created_at``, then ``seq``, then ``session_id``, each descending: a total order).
- An entry's text is the string leaves of its JSON value (in lists and objects at any depth;
  not object keys), one per line; with ``fields``, only those under these top-level keys.
  Entries: highest score first, then newest ``updated_at``, then key (ascending).
"""

from __future__ import annotations

import heapq
import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

# Code point ranges of the scripts written without spaces between words.
_SPACELESS = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3005, 0x3007),  # iteration mark, closing mark, ideographic zero
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3031, 0x3035),  # kana repeat marks
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_pattern: re.Pattern[str] | None = None


def _char(code: int) -> str:
    return re.escape(chr(code))


def _class(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(f"{_char(lo)}-{_char(hi)}" if lo != hi else _char(lo) for lo, hi in ranges)


def _token_pattern() -> re.Pattern[str]:
    """Group 1: a run of a spaceless script; group 2: a word. Built on first use (the
    combining marks are read from ``unicodedata`` once)."""
    global _pattern
    if _pattern is None:
        marks: list[tuple[int, int]] = []
        for code in range(0x300, min(sys.maxunicode, 0xE01EF) + 1):
            if 0x20000 <= code < 0xE0000:
                continue  # no marks there
            if unicodedata.category(chr(code))[0] == "M":
                if marks and marks[-1][1] == code - 1:
                    marks[-1] = (marks[-1][0], code)
                else:
                    marks.append((code, code))
        spaceless = _class(_SPACELESS)
        _pattern = re.compile(f"([{spaceless}]+)|((?:[^\\W_{spaceless}]|[{_class(marks)}])+)")
    return _pattern


def normalize(text: str) -> str:
    """NFC, case-folded, NFC: the form every comparison uses."""
    if text.isascii():
        return text.lower()  # = casefold for ASCII
    folded = unicodedata.normalize("NFC", text).casefold()
    return unicodedata.normalize("NFC", folded)


def tokens(normalized: str) -> tuple[set[str], set[str]]:
    """(words, spaceless runs) of normalised text."""
    if normalized.isascii():
        return set(_ASCII_WORD.findall(normalized)), set()
    words: set[str] = set()
    runs: set[str] = set()
    for run, word in _token_pattern().findall(normalized):
        if run:
            runs.add(run)
        else:
            words.add(word)
    return words, runs


def index_terms(content: str | None) -> list[str]:
    """The terms a message is indexed under: its words, and each character and each pair
    of adjacent characters of its spaceless runs. Sorted, no repeats."""
    if not content:
        return []
    words, runs = tokens(normalize(content))
    for run in runs:
        words.update(run)
        words.update(run[i : i + 2] for i in range(len(run) - 1))
    return sorted(words)


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: its words, its spaceless runs, and the index terms whose messages
    are the candidates (every match holds one of them)."""

    words: frozenset[str]
    runs: frozenset[str]

    @property
    def candidates(self) -> list[str]:
        terms = set(self.words)
        terms.update(run[:2] for run in self.runs)  # a run's first char or char pair
        return sorted(terms)

    @property
    def size(self) -> int:
        return len(self.words) + len(self.runs)


def parse(query: str) -> Query:
    words, runs = tokens(normalize(query))
    return Query(frozenset(words), frozenset(runs))


def score(query: Query, content: str | None) -> int:
    """How many distinct query words ``content`` contains (0: it does not match)."""
    if not content:
        return 0
    text = normalize(content)
    found = 0
    if query.words:
        words, _ = tokens(text)
        found = len(query.words & words)
    return found + sum(1 for run in query.runs if run in text)


T = TypeVar("T")


def rank(
    query: Query, candidates: Iterable[tuple[str | None, Any, int, str, T]], limit: int | None
) -> list[tuple[int, T]]:
    """The matches among ``candidates`` ((content, created_at, seq, session_id, item)),
    best first, at most ``limit``: (score, item). ``created_at`` values of one call must
    compare as the times do (datetimes, or integer microseconds)."""
    scored = []
    for content, created_at, seq, session_id, item in candidates:
        found = score(query, content)
        if found:
            scored.append(((found, created_at, seq, session_id), item))
    best = (
        heapq.nlargest(limit, scored, key=_order)
        if limit is not None
        else sorted(scored, key=_order, reverse=True)
    )
    return [(order[0], item) for order, item in best]


def _order(entry: tuple[Any, Any]) -> Any:
    return entry[0]


def strings(value: Any) -> Iterable[str]:
    """The string leaves of a JSON value, in document order (not object keys)."""
    if type(value) is str:
        yield value
    elif type(value) is dict:
        for item in value.values():
            yield from strings(item)
    elif type(value) is list:
        for item in value:
            yield from strings(item)


def entry_text(value: dict[str, Any] | None, fields: frozenset[str] | None = None) -> str:
    """What ``search_entries`` matches: the string leaves of ``value`` (under the top-level
    keys ``fields`` only, when given), one per line, so no word or run spans two."""
    if not value:
        return ""
    if fields is not None:
        value = {key: item for key, item in value.items() if key in fields}
    return "\n".join(strings(value))


def entry_terms(value: dict[str, Any] | None) -> list[str]:
    """The terms an entry is indexed under (of every field: ``fields`` is a query filter)."""
    return index_terms(entry_text(value))


def rank_entries(
    query: Query, candidates: Iterable[tuple[str, int, str, T]], limit: int | None
) -> list[tuple[int, T]]:
    """The matches among ``candidates`` ((text, updated_at in microseconds, key, item)) of
    one scope, best first, at most ``limit``: (score, item)."""
    scored = []
    for text, updated_at, key, item in candidates:
        found = score(query, text)
        if found:
            scored.append(((-found, -updated_at, key), item))
    best = (
        heapq.nsmallest(limit, scored, key=_order)
        if limit is not None
        else sorted(scored, key=_order)
    )
    return [(-order[0], item) for order, item in best]
