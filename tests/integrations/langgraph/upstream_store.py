"""Runs langgraph-checkpoint's own store tests (tests/test_store.py of its sdist) against
RunstoreStore on each backend, and against LangGraph's InMemoryStore on the same file for
reference; prints the counts.

Usage (in .venv-langgraph, from the repository root; scripts/test does this):
    python tests/integrations/langgraph/upstream_store.py [--modes upstream,memory,...]
        [--junitxml P]

With ``--junitxml P`` each mode's run also writes P-MODE.xml (the upstream run's tests carry the
property ``reference=InMemoryStore``). The sdist (the version pinned in locks/langgraph.txt,
hash checked) is downloaded into build/langgraph-checkpoint at test time; nothing of it is
committed. The plugin that swaps the store class, and the one list of excluded tests, is
runstore_store_upstream.py beside this file. Exit status 1 when a test that is not excluded
fails in any mode. The modes run ``--jobs`` at a time (default: one per CPU, at most 2), each in
its own pytest process.
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

VERSION = "4.3.2"  # langgraph-checkpoint, as pinned in requirements-langgraph.txt
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
BUILD = ROOT / "build" / "langgraph-checkpoint"
MODES = ["upstream", "memory", "sqlite-sqlite3", "sqlite-aiosqlite", "postgres"]

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import framework_tests  # noqa: E402
from runstore_store_upstream import FILES  # noqa: E402


def run(mode: str, folder: Path, junitxml: str | None) -> tuple[dict[str, object], str]:
    """The mode's report, and the tail of its output when a test failed."""
    report = BUILD / f"report-{mode}.json"
    report.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "RUNSTORE_LANGGRAPH_STORE": mode,
        "RUNSTORE_LANGGRAPH_STORE_REPORT": str(report),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "runstore_store_upstream", *FILES]  # fmt: skip
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
    folder = framework_tests.sdist("langgraph", "langgraph-checkpoint", VERSION, BUILD)
    junitxml = args.junitxml and str(Path(args.junitxml).resolve())
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = {mode: pool.submit(run, mode, folder, junitxml) for mode in modes}
    print(f"langgraph-checkpoint {VERSION}: {', '.join(FILES)}")
    print(f"{'store':>26} {'passed':>7} {'failed':>7} {'skipped':>8} {'excluded':>9}"
          f" {'made a store: passed/of':>25}")  # fmt: skip
    bad = False
    excluded: dict[str, str] = {}
    for mode in modes:
        result, output = runs[mode].result()
        if output:
            print(output)
        tests = result["tests"]
        counts = Counter(v["outcome"] for v in tests.values())  # type: ignore[attr-defined]
        stores = [v for v in tests.values() if v["store"]]  # type: ignore[attr-defined]
        store_passed = sum(v["outcome"] == "passed" for v in stores)
        for entry in result["excluded"]:  # type: ignore[attr-defined]
            excluded[entry["test"]] = entry["reason"]
        label = "InMemoryStore" if mode == "upstream" else f"RunstoreStore {mode}"
        print(f"{label:>26} {counts['passed']:>7} {counts['failed']:>7} {counts['skipped']:>8}"
              f" {len(result['excluded']):>9} {store_passed:>17}/{len(stores)}")  # type: ignore[arg-type]  # fmt: skip
        for test, value in tests.items():  # type: ignore[attr-defined]
            if value["outcome"] == "failed":
                bad = True
                print(f"    FAILED {test}")
    if excluded:
        print(f"\nExcluded ({len(excluded)}, listed in runstore_store_upstream.py):")
        for reason in sorted(set(excluded.values())):
            names = sorted(t for t, r in excluded.items() if r == reason)
            print(f"  {len(names)}: {reason}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
