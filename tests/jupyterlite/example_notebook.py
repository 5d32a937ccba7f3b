"""The example notebook's code cells, and the lines its run must print (native and browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "runstore-in-jupyterlite.ipynb"
INSTALL = "%pip install runstore"

RECORDED = "recorded a new conversation"
FOUND = "found the conversation an earlier kernel recorded"
# What a correct run prints, in this order (the message lines also check seq and order); the
# second line is RECORDED on a first run and FOUND once an earlier kernel has recorded it.
EXPECTED = [
    re.compile(r"runstore \S+ imported"),
    re.compile(f"(?P<stored>{RECORDED}|{FOUND})"),
    re.compile(r"1 user: What is a monad\?"),
    re.compile(r"2 assistant: A way to chain computations\."),
    re.compile(r"3 user: An example\?"),
    re.compile(r"4 assistant: Optional values: each step may stop the chain\."),
    re.compile(r"session of grace: 1 run\(s\)"),
    re.compile(r"session of ada: 2 run\(s\)"),
    re.compile(r"ada #4 \(2\): Optional values: each step may stop the chain\."),
    re.compile(r"ada #3 \(1\): An example\?"),
    re.compile(r"ada #2 \(1\): A way to chain computations\."),
    re.compile(r"exported 2 sessions and 6 messages to (?P<path>\S+)"),
    re.compile(r"round trip matches: True"),
    re.compile(r"history matches: True"),
    re.compile(r"state: completed \{'last_question': 'An example\?'\}"),
]


def code_cells() -> list[str]:
    """The source of each code cell, in order."""
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def match_output(text: str) -> list[re.Match[str]]:
    """Find every EXPECTED line in ``text``, in order; raise AssertionError naming the first
    one missing."""
    lines = text.splitlines()
    found: list[re.Match[str]] = []
    at = 0
    for pattern in EXPECTED:
        for index in range(at, len(lines)):
            match = pattern.fullmatch(lines[index].strip())
            if match:
                found.append(match)
                at = index + 1
                break
        else:
            raise AssertionError(f"missing output line {pattern.pattern!r} in:\n{text}")
    return found


def exported_path(found: list[re.Match[str]]) -> str:
    """The export file's path, from the matches of ``match_output``."""
    return next(match["path"] for match in found if "path" in match.re.groupindex)


def stored(found: list[re.Match[str]]) -> str:
    """RECORDED or FOUND, from the matches of ``match_output``."""
    return next(match["stored"] for match in found if "stored" in match.re.groupindex)
