"""Runs OpenAI Agents' own session tests against RunstoreSession on each backend, and
against upstream SQLiteSession on the same files for reference; prints the counts.

Usage (in .venv-openai-agents, from the repository root; scripts/test does this):
    python tests/integrations/openai_agents/upstream.py [--modes upstream,memory,...] [--junitxml P]

With ``--junitxml P`` each mode's run also writes P-MODE.xml (the upstream run's tests carry the
property ``reference=SQLiteSession``). The modes run ``--jobs`` at a time (default: one per CPU,
at most 2), each in its own pytest process; bytecode is cached in the sdist's folder, so the
SDK's test files are compiled and assertion-rewritten once, not once per mode.

The sdist (pinned below, with its tests/; hash checked against locks/openai-agents.txt) is
downloaded from the package index into build/openai-agents at test time; nothing of it is
committed. The plugin that swaps the
session class, and the one list of excluded tests, is runstore_upstream.py beside this file.
Exit status 1 when a test that is not excluded fails in any mode.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VERSION = "0.24.0"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
BUILD = ROOT / "build" / "openai-agents"
MODES = ["upstream", "memory", "sqlite-sqlite3", "sqlite-aiosqlite", "postgres"]

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import framework_tests  # noqa: E402
from runstore_upstream import RUNNER_FILES, SESSION_FILES  # noqa: E402


def sdist() -> Path:
    """The extracted sdist, downloaded on first use."""
    return framework_tests.sdist("openai-agents", "openai-agents", VERSION, BUILD)


def run(mode: str, folder: Path, junitxml: str | None) -> tuple[dict[str, object], str]:
    """The mode's report, and the tail of its output when a test failed."""
    report = BUILD / f"report-{mode}.json"
    report.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "RUNSTORE_AGENTS_SESSION": mode,
        "RUNSTORE_AGENTS_REPORT": str(report),
    }
    # pytest rewrites the asserts of the SDK's large test files: cache that in build/ for the
    # other modes (a PYTHONDONTWRITEBYTECODE=1 environment would redo it in every mode).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "runstore_upstream", *SESSION_FILES, *RUNNER_FILES]  # fmt: skip
    if junitxml:
        command.append(f"--junitxml={junitxml}-{mode}.xml")
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if not report.exists():
        sys.exit(f"{mode}: pytest wrote no report\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(report.read_text())
    failed = [t for t, v in result["tests"].items() if v["outcome"] == "failed"]  # type: ignore[attr-defined]
    return result, done.stdout[-6000:] if failed else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--junitxml", help="write PREFIX-MODE.xml for each mode")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    modes = args.modes.split(",")
    folder = sdist()
    junitxml = args.junitxml and str(Path(args.junitxml).resolve())
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = {mode: pool.submit(run, mode, folder, junitxml) for mode in modes}
    print(f"openai-agents {VERSION}: {len(SESSION_FILES)} session test files in full, and the "
          f"tests of {len(RUNNER_FILES)} runner test files that make a SQLiteSession")  # fmt: skip
    print(f"{'session':>26} {'passed':>7} {'failed':>7} {'skipped':>8} {'excluded':>9}"
          f" {'made a session: passed/of':>27}")  # fmt: skip
    bad = False
    excluded: dict[str, str] = {}
    for mode in modes:
        result, output = runs[mode].result()
        if output:
            print(output)
        tests = result["tests"]
        counts = Counter(v["outcome"] for v in tests.values())  # type: ignore[attr-defined]
        sessions = [v for v in tests.values() if v["session"]]  # type: ignore[attr-defined]
        session_passed = sum(v["outcome"] == "passed" for v in sessions)
        for entry in result["excluded"]:  # type: ignore[attr-defined]
            excluded[entry["test"]] = entry["reason"]
        label = "SQLiteSession" if mode == "upstream" else f"runstore {mode}"
        print(f"{label:>26} {counts['passed']:>7} {counts['failed']:>7} {counts['skipped']:>8}"
              f" {len(result['excluded']):>9} {session_passed:>19}/{len(sessions)}")  # type: ignore[arg-type]  # fmt: skip
        for test, value in tests.items():  # type: ignore[attr-defined]
            if value["outcome"] == "failed":
                bad = True
                print(f"    FAILED {test}")
    if excluded:
        print(
            f"\nExcluded from the runstore runs ({len(excluded)}, listed in runstore_upstream.py):"
        )
        for reason in sorted(set(excluded.values())):
            names = sorted(t for t, r in excluded.items() if r == reason)
            print(f"  {len(names)}: {reason}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
