// Test page: Pyodide with runstore on this page's main thread (window.runPython) and in a
// module Web Worker (window.runPythonInWorker). Both return what the Python code evaluates to.
import { loadPyodide } from "./pyodide/pyodide.mjs";

async function boot() {
  const pyodide = await loadPyodide({ indexURL: new URL("./pyodide/", import.meta.url).href });
  await pyodide.loadPackage("runstore", { messageCallback: () => {} });
  return pyodide;
}

const ready = boot();
window.pyodideReady = ready;
window.runPython = async (code) => (await ready).runPythonAsync(code);
window.writeFiles = async (files) => {
  const pyodide = await ready;
  for (const [path, text] of Object.entries(files)) {
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    pyodide.FS.writeFile(path, text);
  }
};
window.loadPackages = async (names) => (await ready).loadPackage(names, { messageCallback: () => {} });

let worker = null;
let nextId = 0;
const pending = new Map();
window.runPythonInWorker = (code) => {
  if (!worker) {
    worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => {
      const { resolve, reject } = pending.get(data.id);
      pending.delete(data.id);
      data.ok ? resolve(data.result) : reject(new Error(data.error));
    };
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, code });
  });
};
