// Measures runstore inside Pyodide on Node: Pyodide's boot, loading + importing micropip,
// micropip.install of the runstore wheel from emfs: (deps=True) + `import runstore`, then the
// chat turn on the in-memory store and on a bare list, interleaved, with the very same bench
// modules as the native run.
// Usage: node bench/pyodide_report.mjs DIST_DIR WHEEL SETTINGS_JSON  -> prints one JSON object
import { readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";

const [distDir, wheel, settings] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const { loadPyodide } = await import(pathToFileURL(join(resolve(distDir), "pyodide.mjs")).href);

const timed = async (work) => {
  const start = performance.now();
  const value = await work();
  return [performance.now() - start, value];
};

const [bootMs, pyodide] = await timed(() => loadPyodide({ indexURL: resolve(distDir) + "/" }));
// micropip's own cost (a JupyterLite kernel or a page that uses micropip has paid it already)
const [micropipMs] = await timed(async () => {
  await pyodide.loadPackage("micropip", { messageCallback: () => {} });
  await pyodide.runPythonAsync("import micropip");
});
const wheelPath = `/tmp/${basename(wheel)}`;
pyodide.FS.writeFile(wheelPath, readFileSync(wheel));
const [installMs] = await timed(() =>
  pyodide.runPythonAsync(`
await micropip.install("emfs:${wheelPath}", deps=True)
import runstore
`),
);
pyodide.FS.mkdirTree("/home/pyodide/bench");
for (const name of ["__init__.py", "workload.py", "timing.py", "floors.py", "runstore_stores.py"]) {
  pyodide.FS.writeFile(`/home/pyodide/bench/${name}`, readFileSync(join(here, name)));
}
pyodide.globals.set("settings_json", settings);
const turns = await pyodide.runPythonAsync(`
import json, sys
sys.path.insert(0, "/home/pyodide")
from pathlib import Path
from bench.floors import BareList
from bench.runstore_stores import RunstoreMemory
from bench.timing import Settings, interleave, prepare
from bench.workload import SIZES

async def _measure():
    settings = Settings(**json.loads(settings_json))
    found = {BareList.name: {}, RunstoreMemory.name: {}}
    for size in SIZES:
        subjects = [BareList(), RunstoreMemory()]
        plans = []
        for subject in subjects:
            await subject.open(Path("/tmp"))
            plans.append(await prepare(subject, size, settings))
        await interleave(plans)
        for subject, plan in zip(subjects, plans):
            found[subject.name][str(size)] = plan.samples
            await subject.close()
    return json.dumps(found)

await _measure()
`);
console.log(
  JSON.stringify({
    python: pyodide.runPython("import sys; sys.version.split()[0]"),
    pyodide: pyodide.version,
    boot_ms: bootMs,
    micropip_load_ms: micropipMs,
    install_import_ms: installMs,
    turns: JSON.parse(turns),
  }),
);
