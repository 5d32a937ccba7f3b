// The page: talks to the Python worker and renders the store. Every string from the store or
// the user goes into the DOM as text (textContent), never as HTML.

const MODE_KEY = "runstore-playground-mode";
const $ = (id) => document.getElementById(id);

const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 1;
let selected = null; // session shown in the inspector
const openRuns = new Set(); // runs whose state data is unfolded, kept across re-renders
let mode = localStorage.getItem(MODE_KEY) === "persistent" ? "persistent" : "memory";

function call(op, args) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, op, args });
  });
}

worker.onmessage = (event) => {
  const data = event.data;
  if (data.type === "progress") return showProgress(data);
  const waiter = pending.get(data.id);
  pending.delete(data.id);
  if (data.ok) waiter.resolve(data.result);
  else waiter.reject(Object.assign(new Error(data.error.message), data.error));
};
worker.onerror = (event) => {
  event.preventDefault();
  fail("The Python worker crashed", event.message || "could not load worker.js");
};

// Build an element; children are nodes or strings (strings become text nodes).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function showProgress({ step, total, label }) {
  $("boot-progress").max = total;
  $("boot-progress").value = step - 1;
  const steps = $("boot-steps");
  for (const li of steps.children) li.className = "done";
  steps.append(el("li", { text: label }));
  setStatus("loading", `Loading ${step}/${total}…`);
}

// An unexpected error (a bug, a crash): the red banner with the whole traceback, and the console.
function fail(title, detail) {
  $("error-title").textContent = title;
  $("error-detail").textContent = detail || "";
  $("error").hidden = false;
  console.error(`${title}\n${detail || ""}`);
}

// A refusal of the store (a StorageError: importing the same export twice, bad input, a store
// open in another tab): one line on the page; the traceback only in the console, for developers.
function refuse(title, detail) {
  $("notice-text").textContent = title;
  $("notice").hidden = false;
  console.warn(`${title}\n${detail || ""}`);
}

// The handler of a failed request; `refused` titles a refusal (default: `title`).
function report(title, refused = title) {
  return (error) => {
    if (error.refusal) refuse(`${refused}: ${error.message}`, error.detail);
    else fail(`${title}: ${error.message}`, error.detail || error.stack);
    return null;
  };
}

function setEnabled(on) {
  for (const id of ["mode-select", "mode-switch", "export", "import-file", "new-chat",
    "undo-turn", "chat-input", "chat-send", "console-code", "console-run", "erase-user",
    "keep-last", "prune", "search-query", "search-run"]) $(id).disabled = !on;
  for (const button of document.querySelectorAll("button.fork")) button.disabled = !on;
}

// While a request runs the controls are off, so requests never overlap, and <body aria-busy>
// says so (the tests wait for it). Every control's handler calls this before its first await.
let running = 0;
async function busy(work) {
  running += 1;
  document.body.setAttribute("aria-busy", "true");
  $("notice").hidden = true; // a refusal is about the action before this one
  setEnabled(false);
  try {
    return await work();
  } finally {
    running -= 1;
    if (running === 0) {
      setEnabled(true);
      document.body.setAttribute("aria-busy", "false");
    }
  }
}

const short = (id) => (id ? id.slice(0, 8) : "—");
const time = (iso) => new Date(iso).toLocaleTimeString();
const json = (value) => JSON.stringify(value, null, 1);

function renderChat(messages) {
  const log = $("chat-log");
  if (!messages.length) {
    log.replaceChildren(el("li", { class: "empty", text: "No messages yet in this conversation." }));
    return;
  }
  log.replaceChildren(...messages.map((m) =>
    el("li", { "data-role": m.role, "data-seq": String(m.seq) },
      el("span", { class: "bubble", text: m.content ?? "" }))));
  log.scrollTop = log.scrollHeight;
}

function renderAgents(agents) {
  $("agents").replaceChildren(...(agents.length ? agents.map((a) =>
    el("li", {}, el("strong", { text: a.name }), " ",
      el("span", { class: "muted", text: a.description ?? "" }), " ",
      el("span", { class: "mono muted", text: short(a.id) })))
    : [el("li", { class: "muted", text: "none yet" })]));
}

function renderSessions(sessions, chosen, chatSession) {
  $("sessions").replaceChildren(...(sessions.length ? sessions.map((s) => {
    const forkOf = s.parent_session_id
      ? `fork of ${short(s.parent_session_id)} @${s.forked_from_seq}` : "";
    const button = el("button", { type: "button", "aria-pressed": String(s.id === chosen) },
      el("span", { class: "mono", text: short(s.id) }),
      el("span", { class: "fork-of", text: forkOf }),
      el("span", { class: "title", text: typeof s.metadata?.title === "string" ? s.metadata.title : "" }),
      el("span", { text: `${s.external_id ?? "no external id"}${s.id === chatSession ? " · chat" : ""}` }),
      el("span", { class: "muted", text: time(s.updated_at) }));
    if (s.parent_session_id) button.dataset.parentSessionId = s.parent_session_id;
    button.dataset.sessionId = s.id;
    button.addEventListener("click", () => busy(() => { selected = s.id; return refresh(); }));
    return el("li", {}, button);
  }) : [el("li", { class: "muted", text: "none yet" })]));
}

function renderRuns(runs) {
  $("runs").replaceChildren(...runs.map((run, index) => {
    const state = run.state;
    const status = state ? state.status : "no state";
    const item = el("li", { class: "run", "data-run-id": run.id, "data-status": status },
      el("div", { class: "run-head" },
        el("strong", { text: `Run ${index + 1}` }),
        el("span", { class: "badge", "data-status": status, text: status }),
        el("span", { class: "mono muted", text: short(run.id) }),
        el("span", { class: "muted", text: run.duration_seconds == null ? ""
          : `${(run.duration_seconds * 1000).toFixed(1)} ms` })),
      el("dl", {},
        el("dt", { text: "input" }), el("dd", { class: "mono", text: json(run.input_data) }),
        el("dt", { text: "output" }), el("dd", { class: "mono", text: json(run.output_data) }),
        el("dt", { text: "node" }), el("dd", { text: state?.current_node ?? "—" }),
        el("dt", { text: "trace" }), el("dd", { class: "trace" },
          ...(state ? state.trace.map((t) => el("span", { text: t })) : [])),
        ...(state?.error ? [el("dt", { text: "error" }), el("dd", { text: state.error })] : [])),
      el("details", { open: openRuns.has(run.id) }, el("summary", { text: "state data" }),
        el("pre", { text: json(state ? state.data : null) })));
    item.querySelector("details").addEventListener("toggle", (event) => {
      if (event.target.open) openRuns.add(run.id);
      else openRuns.delete(run.id);
    });
    return item;
  }));
}

function renderMessages(sessionId, messages) {
  $("messages").tBodies[0].replaceChildren(...messages.map((m) => {
    const fork = el("button", { type: "button", class: "fork", text: "fork from here",
      title: `A new conversation with messages 1-${m.seq} of this one` });
    fork.addEventListener("click", () => forkFrom(sessionId, m.seq));
    return el("tr", { "data-seq": String(m.seq) },
      el("td", { class: "seq", text: String(m.seq) }),
      el("td", { text: m.role }),
      el("td", { class: "content", text: m.content ?? "" }),
      el("td", { class: "mono muted", text: short(m.run_id) }),
      el("td", { class: "tokens", text: m.token_count == null ? "—" : String(m.token_count) }),
      el("td", { class: "metadata mono", text: m.metadata == null ? "" : JSON.stringify(m.metadata) }),
      el("td", {}, fork));
  }));
}

async function refresh() {
  const view = await call("snapshot", { selected }).catch(report("Could not read the store"));
  if (!view) return;
  selected = view.selected;
  $("store-mode").textContent = view.mode === "persistent"
    ? "persistent: runstore.browser store in IndexedDB" : "in-memory: empty after a reload";
  const s = view.stats;
  $("stats").textContent = `stats(): ${s.sessions} sessions · ${s.runs} runs · `
    + `${s.messages} messages · ${s.entries} entries · ${s.bytes} bytes`;
  renderChat(view.chat);
  renderAgents(view.agents);
  renderSessions(view.sessions, view.selected, view.chat_session_id);
  renderRuns(view.runs);
  renderMessages(view.selected, view.messages);
}

async function send(event) {
  event.preventDefault();
  const text = $("chat-input").value;
  if (!text.trim()) return;
  await busy(async () => {
    const turn = await call("send", { text }).catch(report("The workflow failed"));
    if (turn) {
      $("chat-input").value = "";
      selected = turn.session_id;
    }
    await refresh();
  });
  $("chat-input").focus();
}

async function switchMode() {
  const wanted = $("mode-select").value;
  if (wanted === mode) return; // reopening would empty an in-memory store
  await busy(async () => {
    const opened = await call("open", { mode: wanted }).catch(report("Could not open the store"));
    if (opened) {
      mode = opened.mode;
      localStorage.setItem(MODE_KEY, mode);
      selected = null;
    }
    $("mode-select").value = mode;
    await refresh();
  });
}

async function exportData() {
  await busy(async () => {
    const text = await call("exportData").catch(report("Export failed"));
    if (text === null) return;
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "");
    const link = el("a", { href: url, download: `runstore-export-${stamp}.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
}

async function importData() {
  const file = $("import-file").files[0];
  $("import-file").value = "";
  if (!file) return;
  await busy(async () => {
    const text = await file.text();
    const done = await call("importData", { text }).catch(report(`Import of ${file.name} failed`, `Import of ${file.name} refused`));
    if (done) selected = null;
    await refresh();
  });
}

async function runConsole() {
  await busy(async () => {
    const result = await call("console", { code: $("console-code").value })
      .catch((error) => ({ output: error.detail || error.message, error: true }));
    $("console-output").textContent = result.output || "(no output)";
    $("console-output").dataset.error = String(result.error);
    await refresh();
  });
}

async function undoTurn() {
  await busy(async () => {
    await call("undo").catch(report("Could not undo the last turn"));
    await refresh();
  });
  $("chat-input").focus();
}

async function forkFrom(sessionId, seq) {
  await busy(async () => {
    const fork = await call("fork", { sessionId, seq }).catch(report("Could not fork"));
    if (fork) selected = fork.session_id;
    await refresh();
  });
  $("chat-input").focus();
}

const removed = (r) => `${r.sessions} sessions, ${r.runs} runs, ${r.messages} messages, ${r.entries} entries`;

async function eraseUser() {
  await busy(async () => {
    const done = await call("eraseUser").catch(report("Could not forget the user"));
    if (done) $("lifecycle-result").textContent = `Forgot ${removed(done)}.`;
    await refresh();
  });
}

async function prune() {
  await busy(async () => {
    const text = $("keep-last").value; // "" when not a number: prune refuses it, naming keep_last
    const keepLast = text === "" ? text : Number(text);
    const done = await call("prune", { keepLast }).catch(report("Prune refused"));
    if (done) $("lifecycle-result").textContent = `Pruned ${removed(done)}.`;
    await refresh();
  });
}

async function search(event) {
  event.preventDefault();
  await busy(async () => {
    const hits = await call("search", { query: $("search-query").value })
      .catch(report("Search refused"));
    if (hits === null) return;
    $("search-hits").replaceChildren(...(hits.length ? hits.map((h) =>
      el("li", { "data-session-id": h.session_id, "data-seq": String(h.seq) },
        el("span", { class: "mono muted", text: `${short(h.session_id)} #${h.seq}` }),
        el("span", { text: h.content ?? "" })))
      : [el("li", { class: "muted", text: "no message matches" })]));
  });
}

async function newConversation() {
  await busy(async () => {
    await call("newConversation").catch(report("Could not start a conversation"));
    await refresh();
  });
  $("chat-input").focus();
}

$("chat-form").addEventListener("submit", send);
$("mode-switch").addEventListener("click", switchMode);
$("export").addEventListener("click", exportData);
$("import-file").addEventListener("change", importData);
$("console-run").addEventListener("click", runConsole);
$("console-code").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) runConsole();
});
$("new-chat").addEventListener("click", newConversation);
$("undo-turn").addEventListener("click", undoTurn);
$("erase-user").addEventListener("click", eraseUser);
$("prune").addEventListener("click", prune);
$("search-form").addEventListener("submit", search);
$("error-close").addEventListener("click", () => { $("error").hidden = true; });
$("notice-close").addEventListener("click", () => { $("notice").hidden = true; });

async function start() {
  $("mode-select").value = mode;
  const started = performance.now();
  document.body.setAttribute("aria-busy", "true");
  try {
    const opened = await call("init", { mode });
    $("boot-progress").value = $("boot-progress").max;
    $("boot").hidden = true;
    setStatus("ready", `Ready · runstore ${opened.version} · ${((performance.now() - started) / 1000).toFixed(1)} s`);
    setEnabled(true);
    await refresh();
    $("chat-input").focus();
  } catch (error) {
    setStatus("error", "Failed to start");
    if (mode === "persistent") localStorage.removeItem(MODE_KEY); // a reload starts in memory
    if (error.refusal) refuse(`Startup refused: ${error.message}. Reload to start in memory.`, error.detail);
    else fail(`Startup failed: ${error.message}`, error.detail || error.stack);
  } finally {
    document.body.setAttribute("aria-busy", "false");
  }
}

start();
