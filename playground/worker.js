// Module Web Worker: boots Pyodide, installs the runstore wheel with micropip (same origin),
// loads the Python workflow and answers the page's requests one at a time.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const PERSIST_DIR = "/persist"; // IDBFS mount: the SQLite file of the persistent mode lives here
const PY_FILES = ["chat_workflow.py", "bridge.py"];
const BOOT_STEPS = 5;

let pyodide = null;
let bridge = null;
let mounted = false;
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

function syncfs(populate) {
  return new Promise((resolve, reject) => {
    pyodide.FS.syncfs(populate, (err) => (err ? reject(new Error(`IndexedDB sync failed: ${err}`)) : resolve()));
  });
}

async function mountPersistent() {
  if (mounted) return;
  pyodide.FS.mkdirTree(PERSIST_DIR);
  pyodide.FS.mount(pyodide.FS.filesystems.IDBFS, {}, PERSIST_DIR);
  mounted = true;
  await syncfs(true); // IndexedDB -> memory file system
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
  if (mode === "persistent") await mountPersistent();
  return JSON.parse(await bridge.open_store(mode));
}

// After a write in persistent mode, copy the SQLite file to IndexedDB before answering.
async function afterWrite() {
  if (mounted && bridge.mode === "persistent") await syncfs(false);
}

const ops = {
  init: ({ mode }) => boot(mode),
  open: ({ mode }) => openStore(mode),
  snapshot: ({ selected }) => bridge.snapshot(selected ?? null).then(JSON.parse),
  send: async ({ text }) => {
    try {
      return JSON.parse(await bridge.send(text));
    } finally {
      await afterWrite(); // a failed turn still stored its run and 'failed' state
    }
  },
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
  importData: async ({ text }) => {
    const result = JSON.parse(await bridge.import_json(text));
    await afterWrite();
    return result;
  },
  console: async ({ code }) => {
    const result = JSON.parse(await bridge.run_console(code));
    await afterWrite();
    return result;
  },
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
