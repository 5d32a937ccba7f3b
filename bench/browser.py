"""Chromium: the durable browser store's chat turn at every size next to the in-memory store
in the same page, SQLite on IDBFS (+ ``syncfs``) for comparison, and the time to open a store
of 100,000 messages. Measured by ``bench/browser_turns.py`` inside Pyodide in Debian's headless
Chromium (Playwright), on the Pyodide folder ``bench/pyodide.py`` assembles.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .extras import Line
from .pyodide import DIST, ROOT, _prepare
from .report import Results
from .timing import Figure
from .turns import log
from .workload import SIZES

CHROMIUM = os.environ.get("RUNSTORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
MODULES = ["__init__.py", "workload.py", "timing.py", "floors.py", "runstore_stores.py"]
PAGE = b"""<!doctype html><meta charset="utf-8"><title>bench</title><link rel="icon" href="data:,">
<script type="module">
import { loadPyodide } from "./pyodide.mjs";
window.ready = loadPyodide({ indexURL: new URL("./", location.href).href }).then(async (py) => {
  await py.loadPackage("runstore", { messageCallback: () => {} });
  return py;
});
window.writeFile = async (path, text) => {
  const fs = (await window.ready).FS;
  fs.mkdirTree(path.slice(0, path.lastIndexOf("/")));
  fs.writeFile(path, text);
};
window.runPython = async (code) => (await window.ready).runPythonAsync(code);
</script>"""
IDBFS_SIZES = (100, 10_000, 100_000)
OPEN_SIZE = 100_000
DURABLE = "runstore durable (strict)"


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/bench.html":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def end_headers(self) -> None:
        # Cross-origin isolated: Chromium's clock then has 5 µs steps, not 100 µs.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        types = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}
        return types.get(Path(path).suffix) or super().guess_type(path)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _run_in_chromium(settings: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=DIST))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page()
                page.set_default_timeout(1_800_000)
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/bench.html")
                page.evaluate("async () => { await window.ready; }")
                for name in [*MODULES, "browser_turns.py"]:
                    text = (ROOT / "bench" / name).read_text(encoding="utf-8")
                    page.evaluate(
                        "([p, t]) => window.writeFile(p, t)", [f"/tmp/bench/{name}", text]
                    )
                run = "code => window.runPython(code)"
                page.evaluate(run, "import sys; sys.path.insert(0, '/tmp')")
                version = page.evaluate(run, "import sys; sys.version.split()[0]")
                turns = page.evaluate(
                    run,
                    "from bench import browser_turns\n"
                    f"await browser_turns.turns({settings!r}, {json.dumps(SIZES)!r},"
                    f" {json.dumps(IDBFS_SIZES)!r})",
                )
                opens = page.evaluate(run, f"await browser_turns.open_times({OPEN_SIZE}, 3)")
                return {
                    "turns": json.loads(turns),
                    "open": json.loads(opens),
                    "python": version,
                    "chromium": chromium.version,
                }
            finally:
                chromium.close()
    finally:
        server.shutdown()
        server.server_close()


def measure(results: Results) -> tuple[list[Line], str | None]:
    try:
        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"no Chromium at {CHROMIUM}")
        _prepare()
        settings = json.dumps(dataclasses.asdict(results.settings))
        report = _run_in_chromium(settings)
    except Exception as exc:  # any failure is reported, not fatal to the run
        log(f"  Chromium: not run: {exc}")
        return [], str(exc).splitlines()[0][:300]
    turns: dict[str, dict[str, list[float]]] = report["turns"]
    memory = turns.get("runstore in-memory", {})
    lines: list[Line] = []
    for name, by_size in turns.items():
        for size, samples in by_size.items():
            figure = Figure(samples)
            detail = ""
            if size in memory and name != "runstore in-memory":
                detail = f"{figure.median / Figure(memory[size]).median:.0f}x in-memory"
            lines.append(Line(f"{name} turn, P={int(size):,}", figure, detail=detail))
        sizes = sorted(by_size, key=int)
        if len(sizes) > 1:
            growth = Figure(by_size[sizes[-1]]).median / Figure(by_size[sizes[0]]).median
            lines.append(
                Line(
                    f"{name}: turn at P={int(sizes[-1]):,} / turn at P={int(sizes[0]):,}",
                    Figure([growth], unit="x"),
                )
            )
    lines.append(
        Line(
            f"open_store of a store of {OPEN_SIZE:,} messages",
            Figure([s * 1000 for s in report["open"]], unit="ms"),
            detail="snapshot read + decode; replays no log",
        )
    )
    log(f"  Chromium {report['chromium']}: done")
    return lines, None
