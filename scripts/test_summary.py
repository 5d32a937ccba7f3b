#!/usr/bin/env python3
"""The table that ends scripts/test: one row per stage, counted from what each step left in
build/test-results/STAGE/ (stdlib only, so it runs even when a venv could not be made).

Each stage folder has ``steps.tsv``, one line per step: ``KIND<TAB>EXIT<TAB>NAME<TAB>FILES``.
KIND ``setup`` (a venv, a build) counts only when it fails, as one failed test. KIND ``check``
(ruff, mypy) counts as one test, passed when EXIT is 0. KIND
``junit`` (a pytest run) counts the test cases of its JUnit XML FILES (a glob); a non-zero EXIT
with no failing case in them (pytest could not start, collected nothing, crashed) counts as one
failed test. A test case with the property ``reference`` ran the framework's own implementation,
not runstore: it is counted on its own row, and its failure is reported as an environment
problem. Exit status 1 when anything failed.

Usage: scripts/test_summary.py RESULTS_DIR STAGE=SECONDS...
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, outcome: str, name: str) -> None:
        if outcome == "failed":
            self.failed += 1
            self.failures.append(name)
        elif outcome == "skipped":
            self.skipped += 1
        else:
            self.passed += 1


def outcome(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def case_name(case: ET.Element) -> str:
    return f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")


def count_stage(folder: Path) -> tuple[Counts, dict[str, Counts]]:
    """(runstore's counts, {reference name: its counts}) of one stage."""
    own = Counts()
    references: dict[str, Counts] = {}
    steps = folder / "steps.tsv"
    lines = steps.read_text().splitlines() if steps.exists() else []
    for line in lines:
        kind, code, name, files = ([*line.split("\t"), "", "", ""])[:4]
        if kind == "check":
            own.add("passed" if code == "0" else "failed", name)
            continue
        if kind == "setup":
            if code != "0":
                own.add("failed", f"{name} (setup, exit {code})")
            continue
        failed_cases = 0
        for path in sorted(folder.glob(files)) if files else []:
            try:
                root = ET.parse(path).getroot()
            except ET.ParseError as error:
                own.add("failed", f"{name}: unreadable {path.name} ({error})")
                failed_cases += 1
                continue
            for case in root.iter("testcase"):
                props = {p.get("name"): p.get("value") for p in case.iter("property")}
                reference = props.get("reference")
                counts = references.setdefault(reference, Counts()) if reference else own
                result = outcome(case)
                counts.add(result, case_name(case))
                failed_cases += result == "failed"
        if code != "0" and failed_cases == 0:
            own.add("failed", f"{name} (exit {code}, no failing test in its report)")
    return own, references


def main() -> None:
    results = Path(sys.argv[1])
    rows: list[tuple[str, str, Counts, float | None, str]] = []
    environment: list[str] = []
    problems: list[str] = []
    for arg in sys.argv[2:]:
        stage, _, seconds = arg.partition("=")
        folder = results / stage
        if not folder.is_dir():
            rows.append((stage, "", Counts(), None, "not run"))
            continue
        own, references = count_stage(folder)
        rows.append((stage, "", own, float(seconds), "FAILED" if own.failed else "ok"))
        problems += [f"{stage}: {name}" for name in own.failures]
        for reference, counts in sorted(references.items()):
            status = "ENVIRONMENT" if counts.failed else "ok"
            rows.append((stage, f"reference {reference}", counts, None, status))
            if counts.failed:
                shown = ", ".join(counts.failures[:5])
                more = f" and {counts.failed - 5} more" if counts.failed > 5 else ""
                environment.append(
                    f"ENVIRONMENT: the framework's own reference failed: {stage}: {reference}: "
                    f"{counts.failed} failed ({shown}{more}); runstore is not the cause, the "
                    f"installed framework or machine is"
                )
    width = max([len("stage"), *(len(s) + (len(r) + 3 if r else 0) for s, r, *_ in rows)])
    print(f"\n== Results (build/test-results/)\n{'stage':<{width}} {'passed':>7} {'failed':>7}"
          f" {'skipped':>8} {'seconds':>8}  result")  # fmt: skip
    total = Counts()
    for stage, reference, counts, seconds, status in rows:
        label = f"  └ {reference}" if reference else stage
        time = f"{seconds:.0f}" if seconds is not None else ""
        print(f"{label:<{width}} {counts.passed:>7} {counts.failed:>7} {counts.skipped:>8}"
              f" {time:>8}  {status}")  # fmt: skip
        total.passed += counts.passed
        total.failed += counts.failed
        total.skipped += counts.skipped
    not_run = [stage for stage, _, _, _, status in rows if status == "not run"]
    for line in problems[:40]:
        print(f"FAILED {line}")
    if len(problems) > 40:
        print(f"... and {len(problems) - 40} more failures (see each stage's output above)")
    for line in environment:
        print(line)
    if not_run:
        print(f"NOT RUN: {', '.join(not_run)}")
    print(f"{total.passed} passed, {total.failed} failed, {total.skipped} skipped")
    sys.exit(1 if total.failed or not_run else 0)


if __name__ == "__main__":
    main()
