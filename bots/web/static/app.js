// backtrack's time-travel viewer. Every piece of data is rendered with textContent, never
// as HTML. The token lives in sessionStorage and goes out only in the Authorization header.
"use strict";

const TOKEN = "backtrack-token";
const PAGE = 50;
const WATCH_MS = 3000;
const state = { offset: 0, key: null, tree: null, turns: [], selected: null };
const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function status(text, error) { const s = $("status"); s.textContent = text || ""; s.className = error ? "error" : ""; }

class Unauthorized extends Error {}

async function call(method, path, body) {
  const headers = { "Accept": "application/json" };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) throw new Unauthorized("log in first");
  if (!response.ok) throw new Error((data && data.error && data.error.message) || ("HTTP " + response.status));
  return data;
}

function showLogin(message) {
  $("app").hidden = true; $("logout").hidden = true; $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function guarded(work) {
  try { await work(); }
  catch (e) {
    if (e instanceof Unauthorized) {
      const tried = sessionStorage.getItem(TOKEN);
      sessionStorage.removeItem(TOKEN);
      showLogin(tried ? "The token was missing or wrong." : "");
    }
    else status(e.message, true);
  }
}

// -- the conversation list ---------------------------------------------------------

async function loadList() {
  const query = new URLSearchParams({ offset: state.offset, limit: PAGE });
  if ($("search").value) query.set("q", $("search").value);
  if ($("platform").value) query.set("platform", $("platform").value);
  const page = await call("GET", "/api/ui/conversations?" + query);
  $("login").hidden = true; $("app").hidden = false; $("logout").hidden = !sessionStorage.getItem(TOKEN);
  const rows = $("rows");
  rows.replaceChildren(...page.conversations.map((c) => el("tr", { "data-key": c.key, onclick: () => guarded(() => openConversation(c.key)) },
    el("td", {}, c.platform), el("td", {}, c.place), el("td", {}, c.title), el("td", {}, when(c.last_active)),
    el("td", {}, c.turns), el("td", {}, c.pending ? "waiting for approval" : ""))));
  if (!page.conversations.length) rows.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No conversations.")));
  $("prev").disabled = state.offset === 0; $("next").disabled = !page.more;
  $("page").textContent = page.conversations.length ? `${state.offset + 1}–${state.offset + page.conversations.length}` : "";
}

// -- one conversation: the tree ------------------------------------------------------

async function openConversation(key, keepSelection, fetched) {
  state.key = key;
  const tree = fetched || await call("GET", "/api/ui/tree?" + new URLSearchParams({ key }));
  state.tree = tree; state.turns = tree.turns;
  if (!keepSelection) state.selected = null;
  $("conversation").hidden = false;
  $("title").textContent = tree.title; $("key").textContent = key;
  $("older").hidden = !tree.more;
  drawTree();
  await drawCalls(key);
  if (state.selected) await selectTurn(state.selected);
  else { $("steps").replaceChildren(); $("steps-title").textContent = "Steps: pick a turn"; $("turn-actions").hidden = true; $("pending-actions").hidden = true; }
}

// Every MCP call with its server, policy and approval; a replay's reused result is marked.
async function drawCalls(key) {
  const { tool_calls: calls } = await call("GET", "/api/ui/tool_calls?" + new URLSearchParams({ key }));
  $("calls-pane").hidden = calls.length === 0;
  $("calls").replaceChildren(...calls.map((c) => el("tr", { class: c.error ? "failed" : "" },
    el("td", {}, when(c.time)), el("td", {}, c.server), el("td", {}, c.tool),
    el("td", {}, JSON.stringify(c.args)), el("td", {}, c.read_only ? `${c.policy} (read-only)` : c.policy),
    el("td", {}, c.approved_by || ""),
    el("td", {}, c.reused ? "\u21ba reused the recorded result (not called again)" : (c.error || c.result || "")))));
}

async function loadOlder() {
  const before = state.turns.length ? state.turns[0].turn_id : "";
  const more = await call("GET", "/api/ui/tree?" + new URLSearchParams({ key: state.key, before }));
  state.turns = more.turns.concat(state.turns); $("older").hidden = !more.more;
  drawTree();
}

// Depth-first from the root; a branch (any child but the first) is drawn one step in.
function ordered(turns) {
  const children = new Map();
  const known = new Set(turns.map((t) => t.checkpoint_id));
  for (const t of turns) {
    const parent = t.parent_checkpoint_id && known.has(t.parent_checkpoint_id) ? t.parent_checkpoint_id : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(t);
  }
  const out = [];
  const stack = (children.get("") || []).slice().reverse().map((t, i, all) => [t, i === all.length - 1 ? 0 : 1]);
  while (stack.length) {
    const [turn, depth] = stack.pop();
    out.push([turn, depth]);
    const kids = children.get(turn.checkpoint_id) || [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + (i === 0 ? 0 : 1)]);
  }
  return out;
}

function drawTree() {
  const tree = state.tree;
  const byCheckpoint = new Map(state.turns.map((t) => [t.checkpoint_id, t]));
  const rewindsTo = new Map();
  for (const r of tree.rewinds) {
    const at = r.to_checkpoint_id || "";
    if (!rewindsTo.has(at)) rewindsTo.set(at, []);
    rewindsTo.get(at).push(r);
  }
  const items = [];
  const marker = (r) => el("span", { class: "marker" },
    `↩ rewound here by ${r.user || "someone"} at ${when(r.time)}` +
    (r.from_checkpoint_id && byCheckpoint.has(r.from_checkpoint_id) ? ` (from turn #${byCheckpoint.get(r.from_checkpoint_id).index})` : ""));
  for (const r of rewindsTo.get("") || []) items.push(el("li", { class: "start" }, "start", marker(r)));
  // Versions of one turn (edits, retries, replays) are the turns with the same parent: "v2/3".
  const siblings = new Map();
  for (const t of state.turns) {
    const parent = t.parent_checkpoint_id || "";
    if (!siblings.has(parent)) siblings.set(parent, []);
    siblings.get(parent).push(t.checkpoint_id);
  }
  const version = (turn) => {
    const all = siblings.get(turn.parent_checkpoint_id || "");
    return all.length > 1 ? el("span", { class: "version", title: "versions of this turn: edits, retries, replays" },
      `v${all.indexOf(turn.checkpoint_id) + 1}/${all.length}`) : null;
  };
  for (const [turn, depth] of ordered(state.turns)) {
    const replayed = turn.replay_of && byCheckpoint.get(turn.replay_of);
    const item = el("li", {
      class: (turn.live ? "live" : "abandoned") + (state.selected === turn.checkpoint_id ? " selected" : ""),
      "data-checkpoint": turn.checkpoint_id,
      onclick: () => guarded(() => selectTurn(turn.checkpoint_id)),
    },
    `#${turn.index} `, version(turn), el("span", { class: "question" }, turn.question),
    el("span", { class: "muted" }, ` — ${turn.user || "anonymous"}, ${when(turn.time)}${turn.live ? "" : " (abandoned)"}`),
    turn.replay_of ? el("a", { class: "replay", href: "#", onclick: (ev) => { ev.preventDefault(); ev.stopPropagation(); guarded(() => selectTurn(turn.replay_of)); } },
      replayed ? `replay of #${replayed.index}` : "replay") : null,
    ...(rewindsTo.get(turn.checkpoint_id) || []).map(marker));
    item.style.marginLeft = `${depth * 18}px`;  // through the DOM: the page's CSP allows no inline style
    items.push(item);
  }
  if (tree.pending) {
    const p = tree.pending;
    items.push(el("li", { class: "pending" + (state.selected === p.checkpoint_id ? " selected" : ""), "data-checkpoint": p.checkpoint_id,
      onclick: () => guarded(() => selectTurn(p.checkpoint_id)) },
      "⏸ waiting for approval: ", el("span", { class: "question" }, p.question),
      el("span", { class: "muted" }, ` — ${p.tool} requested by ${p.requested_by || "anonymous"}`)));
  }
  $("tree").replaceChildren(...items);
}

// -- one turn: its steps --------------------------------------------------------------

function messageLine(m) {
  const calls = (m.tool_calls || []).map((c) => `${c.name}(${JSON.stringify(c.args)})`).join(", ");
  if (m.type === "tool") return `tool result${m.name ? " of " + m.name : ""}: ${m.content}`;
  if (m.type === "ai") return `model: ${m.content}${calls ? (m.content ? " " : "") + "calls " + calls : ""}`;
  return `${m.type === "human" ? "user" : m.type}: ${m.content}`;
}

function drawStep(step) {
  const added = [...step.added.map(messageLine), ...Object.entries(step.values).map(([k, v]) => `${k} = ${JSON.stringify(v)}`)];
  return el("li", { class: "step", "data-node": step.node },
    el("div", { class: "step-head" }, step.agent === "agent" ? step.node : `${step.agent} › ${step.node}`,
      el("time", { datetime: step.started_at }, when(step.started_at)), el("span", { class: "dur" }, `${step.duration_ms} ms`)),
    el("ul", { class: "diff" }, ...added.map((line) => el("li", {}, line))),
    step.pause ? el("div", { class: "pause" }, `paused for approval: ${step.pause.tool} ${JSON.stringify(step.pause.args)}` +
      (step.decision ? ` — ${step.decision.approved ? "approved" : "rejected"} by ${step.decision.by || "someone"}` : " — waiting")) : null,
    step.sent.length ? el("details", {}, el("summary", {}, `sent to the model: ${step.sent.length + step.sent_omitted} messages` +
      (step.sent_omitted ? ` (the oldest ${step.sent_omitted} not shown)` : "") + " after the system prompt"),
      el("ol", { class: "sent" }, ...step.sent.map((m) => el("li", {}, messageLine(m))))) : null);
}

async function selectTurn(checkpoint) {
  state.selected = checkpoint;
  drawTree();
  const pending = state.tree.pending && state.tree.pending.checkpoint_id === checkpoint ? state.tree.pending : null;
  const turn = state.turns.find((t) => t.checkpoint_id === checkpoint);
  $("steps-title").textContent = pending ? "Steps of the paused request" : turn ? `Steps of turn #${turn.index}` : "Steps";
  $("turn-actions").hidden = !turn; $("pending-actions").hidden = !pending;
  const found = await call("GET", "/api/ui/steps?" + new URLSearchParams({ key: state.key, checkpoint_id: checkpoint }));
  const items = found.steps.map(drawStep);
  if (found.truncated) items.unshift(el("li", { class: "muted" }, "Only the newest steps of this turn are shown."));
  $("steps").replaceChildren(...items);
}

// -- actions: each confirmed, each recorded as user "web" ------------------------------

async function act(question, path, body, done) {
  if (!window.confirm(question)) return;
  const result = await call("POST", path, body);
  status(done(result));
}

function wire() {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN, $("token").value); $("token").value = "";
    guarded(loadList);
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN); showLogin(""); });
  let typing = null;
  $("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { state.offset = 0; guarded(loadList); }, 250); });
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("platform").addEventListener("change", () => { state.offset = 0; guarded(loadList); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); guarded(loadList); });
  $("next").addEventListener("click", () => { state.offset += PAGE; guarded(loadList); });
  $("older").addEventListener("click", () => guarded(loadOlder));
  const turn = () => state.turns.find((t) => t.checkpoint_id === state.selected);
  $("rewind").addEventListener("click", () => guarded(async () => {
    const t = turn();
    await act(`Rewind this conversation to turn #${t.index}? The turns after it stay stored.`, "/api/ui/rewind",
      { key: state.key, checkpoint_id: t.checkpoint_id }, (r) => `Rewound to turn #${t.index}; ${r.removed} turns left the live branch.`);
    await openConversation(state.key, true);
  }));
  $("replay").addEventListener("click", () => guarded(async () => {
    const t = turn();
    await act(`Ask turn #${t.index}'s question again, as a new branch?`, "/api/ui/replay",
      { key: state.key, checkpoint_id: t.checkpoint_id }, () => `Replayed turn #${t.index} as a new branch.`);
    await openConversation(state.key);
  }));
  for (const [id, approve] of [["approve", true], ["reject", false]]) {
    $(id).addEventListener("click", () => guarded(async () => {
      const p = state.tree.pending;
      await act(`${approve ? "Approve" : "Reject"} running ${p.tool} with ${JSON.stringify(p.args)}?`, "/api/ui/resolve",
        { key: state.key, approval_id: p.id, approve }, () => `${approve ? "Approved" : "Rejected"} the request.`);
      await openConversation(state.key);
    }));
  }
  $("delete").addEventListener("click", () => guarded(async () => {
    await act(`Delete ${state.key} with every turn and checkpoint? This cannot be undone.`, "/api/ui/forget",
      { key: state.key }, () => `Deleted ${state.key}.`);
    $("conversation").hidden = true; state.key = null;
    await loadList();
  }));
}

function takeFragmentToken() {
  const match = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN, decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

// Watching: while the tab is shown, the list and the open conversation follow new turns,
// so the tree grows as people chat; an unchanged tree is not drawn again.
async function refresh() {
  if (document.hidden || $("app").hidden) return;
  await loadList();
  const key = state.key;
  if (!key) return;
  const tree = await call("GET", "/api/ui/tree?" + new URLSearchParams({ key }));
  if (key === state.key && JSON.stringify(tree) !== JSON.stringify(state.tree)) await openConversation(key, true, tree);
}

takeFragmentToken();
wire();
guarded(loadList);
setInterval(() => guarded(refresh), WATCH_MS);
