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

// Calls a bridge operation. A refusal of the store (a StorageError: bad input, a store open in
// another tab) is thrown as an Error marked `refusal`: its message is the error's one-line text.
async function py(name, ...args) {
  const reply = JSON.parse(await bridge.call(name, JSON.stringify(args)));
  if ("refused" in reply) {
    throw Object.assign(new Error(reply.refused), { refusal: true, detail: reply.detail });
  }
  return reply.result;
}

const openStore = (mode) => py("open_store", mode);

// Writes need nothing after them: runstore.browser returns once IndexedDB has the change.
const ops = {
  init: ({ mode }) => boot(mode),
  open: ({ mode }) => openStore(mode),
  snapshot: ({ selected }) => py("snapshot", selected ?? null),
  send: ({ text }) => py("send", text),
  newConversation: () => py("new_conversation"),
  selectChat: ({ sessionId }) => py("select_chat_session", sessionId),
  undo: () => py("undo_last_turn"),
  fork: ({ sessionId, seq }) => py("fork_from", sessionId, seq),
  eraseUser: () => py("erase_user"),
  search: ({ query }) => py("search", query),
  prune: ({ keepLast }) => py("prune", keepLast),
  exportData: () => py("export_json"),
  importData: ({ text }) => py("import_json", text),
  console: ({ code }) => py("run_console", code),
};

function describe(error) {
  const during = error && error.step ? `${error.step} failed: ` : "";
  if (error && error.refusal) {
    return { message: during + error.message, detail: error.detail, refusal: true };
  }
  // A Python exception's message is its traceback: the last line names the error.
  const text = String(error && error.message ? error.message : error).trim();
  const lines = text.split("\n");
  return { message: during + lines[lines.length - 1], detail: text, refusal: false };
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
