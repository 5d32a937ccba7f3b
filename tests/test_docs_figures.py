"""Every figure in the docs comes from the committed `scripts/bench` run (bench/docs.py): no
page types one by hand, and every generated block is what the committed data gives."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import docs  # noqa: E402

# A figure: a time, a size or a percentage, a ratio (1.4x), a "median (min-max)" cell, a pair.
FIGURE = re.compile(
    r"(?<![\w.,-])\d(?:[\d,.]*\d)?\s?(?:µs|us|ms|s|sec|seconds|minutes|B|KB|kB|MB|GB|bytes|%)"
    r"(?![\w-])"
    r"|(?<![\w.,\\-])\d(?:[\d,.]*\d)?[x\u00d7](?!\w)"
    r"|\d[\d,.]* \([\d,.]+-[\d,.]+\)"
    r"|(?<![\w.,-])\d[\d,.]* / \d[\d,.]*(?!\w)"  # "273 / 342": a pair quoted from a table
)
# Settings and limits the code defines, not measurements: (page, the text around the figure).
NOT_MEASURED = {
    ("docs/sqlite.md", "a 30 s busy"),  # the busy timeout runstore sets
    ("docs/browser.md", "waits 3 s"),  # the playground's lock_timeout
    ("docs/browser.md", "(and 4 MB)"),  # the snapshot threshold in _oplog.py
    ("docs/contract.md", "(2704 bytes)"),  # PostgreSQL's btree entry limit
    ("docs/postgres.md", "lock_timeout = '5s'"),  # the SQL runstore runs
}


def hand_typed(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    for start, end in reversed(list(docs.blocks(text))):
        text = text[:start] + text[end:]
    name = page.relative_to(ROOT).as_posix()
    found = []
    for line in text.splitlines():
        for match in FIGURE.finditer(line):
            if not any(
                page_ == name and match.group() in around and around in line
                for page_, around in NOT_MEASURED
            ):
                found.append(f"{name}: {match.group()!r} in {line.strip()!r}")
    return found


def test_no_figure_typed_outside_a_generated_block() -> None:
    pages = [p for p in docs.pages(ROOT) if p.name != "benchmarks.md"]
    assert len(pages) > 5
    found = [problem for page in pages for problem in hand_typed(page)]
    assert found == [], (
        "figures typed by hand (quote the committed run with a block, bench/docs.py):\n"
        + "\n".join(found)
    )


def test_every_setting_listed_as_not_measured_is_still_there() -> None:
    for page, around in NOT_MEASURED:
        assert around in (ROOT / page).read_text(encoding="utf-8"), (page, around)


def test_generated_blocks_are_what_the_committed_run_gives() -> None:
    problems = docs.stale(ROOT)
    assert problems == [], "run `python -m bench.docs` (never edit a block): " + "; ".join(problems)


def test_the_detector_finds_typed_figures(tmp_path: Path) -> None:
    typed_by_hand = ("about 3 ms", "1.45x", "664 (623-699)", "2.7 s", "99 KB", "273 / 342")
    for typed in typed_by_hand:
        assert FIGURE.search(typed), typed
    for plain in ("openai 3.x", "`\\x1f`", "Pyodide 314", "100,000 messages", "UTF-8 bytes"):
        assert not FIGURE.search(plain), plain


def test_a_block_without_data_in_the_committed_run_says_so() -> None:
    page = ROOT / "docs" / "integrations.md"
    text = "<!-- bench:browser-cost -->\nold figure\n<!-- /bench:browser-cost -->\n"
    data = {"generated": "2026-01-01 00:00 UTC", "tables": {}}
    filled = docs.refill(text, data, page)
    assert "old figure" not in filled
    assert "Not measured in the committed run (2026-01-01 00:00 UTC)" in filled
    assert "Not measured in the committed run" in docs.refill(text, None, page)
