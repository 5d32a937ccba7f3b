// Module Web Worker: boots Pyodide, installs the runstore wheel with micropip (same origin),
// loads the Python workflow and answers the page's requests one at a time. The persistent mode
// is runstore's own durable store (runstore.browser, IndexedDB): nothing to do here for it.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const PY_FILES = ["chat_workflow.py", "bridge.py"];
const BOOT_STEPS = 5;

let pyodide = null;
let bridge = null;
let queue = Promise.resolve();

// Runs one boot step after announcing it; an error names the step that failed.
async function step(number, label, work) {
  postMessage({ type: "progress", step: number, total: BOOT_STEPS, label });
  try {
    return await work();
  } catch (error) {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), { step: label });
  }
}

async function boot(mode) {
  const here = new URL(".", import.meta.url);
  pyodide = await step(1, "Starting Pyodide (Python in WebAssembly)", () =>
    loadPyodide({ indexURL: new URL("pyodide/", here).href }));
  await step(2, "Loading micropip", () => pyodide.loadPackage("micropip", { messageCallback: () => {} }));
  await step(3, "Installing the runstore wheel with micropip", async () => {
    const site = await (await fetch(new URL("site.json", here))).json();
    const micropip = pyodide.pyimport("micropip");
    await micropip.install(new URL(`wheels/${site.wheel}`, here).href);
    micropip.destroy();
  });
  bridge = await step(4, "Loading the chat workflow", async () => {
    const dir = "/home/pyodide/playground";
    pyodide.FS.mkdirTree(dir);
    for (const name of PY_FILES) {
      const response = await fetch(new URL(`py/${name}`, here));
      if (!response.ok) throw new Error(`could not fetch py/${name}: HTTP ${response.status}`);
      pyodide.FS.writeFile(`${dir}/${name}`, await response.text());
    }
    pyodide.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(dir)})`);
    return pyodide.pyimport("bridge");
  });
  const label = `Opening the ${mode === "persistent" ? "persistent" : "in-memory"} store`;
  return step(5, label, () => openStore(mode));
}

async function openStore(mode) {
  return JSON.parse(await bridge.open_store(mode));
}

const ops = {
  init: ({ mode }) => boot(mode),
  open: ({ mode }) => openStore(mode),
  snapshot: ({ selected }) => bridge.snapshot(selected ?? null).then(JSON.parse),
  send: async ({ text }) => JSON.parse(await bridge.send(text)),
  newConversation: () => JSON.parse(bridge.new_conversation()),
  selectChat: ({ sessionId }) => JSON.parse(bridge.select_chat_session(sessionId)),
  undo: async () => {
    const result = JSON.parse(await bridge.undo_last_turn());
    await afterWrite();
    return result;
  },
  fork: async ({ sessionId, seq }) => {
    const result = JSON.parse(await bridge.fork_from(sessionId, seq));
    await afterWrite();
    return result;
  },
  exportData: () => bridge.export_json(),
  importData: async ({ text }) => JSON.parse(await bridge.import_json(text)),
  console: async ({ code }) => JSON.parse(await bridge.run_console(code)),
};

function describe(error) {
  // A Python exception's message is its traceback: the last line names the error.
  const text = String(error && error.message ? error.message : error).trim();
  const lines = text.split("\n");
  const last = lines[lines.length - 1];
  return { message: error && error.step ? `${error.step} failed: ${last}` : last, detail: text };
}

self.onmessage = (event) => {
  const { id, op, args } = event.data;
  queue = queue.then(async () => {
    try {
      if (!ops[op]) throw new Error(`unknown request ${op}`);
      if (op !== "init" && !bridge) throw new Error("Python is not ready");
      postMessage({ id, ok: true, result: await ops[op](args || {}) });
    } catch (error) {
      postMessage({ id, ok: false, error: describe(error) });
    }
  });
};
