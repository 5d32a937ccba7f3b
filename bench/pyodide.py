"""Pyodide on Node: wheel size, micropip install + import time next to Pyodide's own boot,
and the in-memory chat turn inside Pyodide next to native CPython, in this same run.

Needs Node and the Pyodide npm package (``npm ci``); the wheel is built with
``scripts/build_wheel`` and a Pyodide folder holding micropip and that wheel is assembled
with ``scripts/assemble_pyodide.py`` into ``build/bench-pyodide``. The turn inside Pyodide is
measured by the same ``bench`` modules as natively (``bench/pyodide_report.mjs``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .extras import Line
from .report import Results
from .timing import Figure
from .turns import log

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "build" / "bench-pyodide"


def _run(command: list[str], timeout: float) -> str:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {(done.stderr or done.stdout)[-400:]}")
    return done.stdout


def _prepare() -> Path:
    """Build the wheel and assemble the Pyodide folder; returns the wheel's path."""
    if shutil.which("node") is None:
        raise RuntimeError("node is not installed")
    built = Path(_run([str(ROOT / "scripts" / "build_wheel")], 300).strip().splitlines()[-1])
    _run(
        [
            sys.executable,
            str(ROOT / "scripts" / "assemble_pyodide.py"),
            "--out",
            str(DIST),
            "--packages",
            "micropip",
            "--wheel",
            str(built),
        ],
        900,
    )
    return DIST / built.name  # the copy: build/wheel/ is shared with other scripts


async def measure(results: Results) -> tuple[list[Line], str | None]:
    try:
        wheel = _prepare()
        settings = json.dumps(dataclasses.asdict(results.settings))
        report = json.loads(
            _run(
                [
                    "node",
                    str(ROOT / "bench" / "pyodide_report.mjs"),
                    str(DIST),
                    str(wheel),
                    settings,
                ],
                1200,
            )
            .strip()
            .splitlines()[-1]
        )
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        log(f"  Pyodide: not run: {exc}")
        return [], str(exc).splitlines()[0][:300]
    native = next((r for r in results.rows if r.name == "runstore in-memory"), None)
    version = f"Pyodide {report['pyodide']}, Python {report['python']}, Node"
    lines = [
        Line("wheel size", Figure([float(wheel.stat().st_size)], unit="bytes"), detail=wheel.name),
        Line("Pyodide boot (loadPyodide)", Figure([report["boot_ms"]], unit="ms"), detail=version),
        Line(
            "loadPackage('micropip') + import micropip",
            Figure([report["micropip_load_ms"]], unit="ms"),
            detail="not counted in the install: JupyterLite and most pages have it loaded",
        ),
        Line(
            "micropip.install + import",
            Figure([report["install_import_ms"]], unit="ms"),
            detail="from emfs:, deps=True",
        ),
    ]
    for name, label in (("bare list", "bare list"), ("runstore in-memory", "runstore in-memory")):
        for size, samples in report["turns"].get(name, {}).items():
            figure = Figure(samples)
            detail = ""
            if name == "runstore in-memory" and native and int(size) in native.figures:
                ratio = figure.median / native.figures[int(size)].median
                detail = f"{ratio:.2f}x native CPython ({native.figures[int(size)].median:.2f} µs)"
            lines.append(Line(f"{label} turn in Pyodide, P={int(size):,}", figure, detail=detail))
    log("  Pyodide: done")
    return lines, None
