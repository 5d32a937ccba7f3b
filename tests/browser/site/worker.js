// Module Web Worker: Pyodide with runstore; runs the Python code it is sent, one at a time.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const ready = loadPyodide({ indexURL: new URL("./pyodide/", import.meta.url).href }).then(
  async (pyodide) => {
    await pyodide.loadPackage("runstore", { messageCallback: () => {} });
    return pyodide;
  },
);
let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  queue = queue.then(async () => {
    try {
      const result = await (await ready).runPythonAsync(data.code);
      postMessage({ id: data.id, ok: true, result });
    } catch (error) {
      postMessage({ id: data.id, ok: false, error: String(error && error.message ? error.message : error) });
    }
  });
};
