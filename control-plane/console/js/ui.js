// DOM and formatting helpers. Pages build DOM with h(), never innerHTML with data, so nothing
// the API returns can become markup.

/**
 * Creates an element: h("a", {href: "#/x", class: "button"}, "text", child, [more]).
 * Attributes starting with "on" are listeners; `false`/null attributes are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Sentences waiting to be announced, and the timer that will announce them together. */
let pendingAnnouncements = [];
let announceTimer = null;

/**
 * Announces `text` to screen readers through the page's persistent aria-live region. What is
 * announced within one tick is read as one message, so that no sentence replaces another.
 */
export function announce(text) {
  pendingAnnouncements.push(text);
  if (announceTimer) return;
  const region = document.getElementById("announcer");
  region.textContent = "";
  // Set after a pause, so that repeating the same sentence is announced again.
  announceTimer = setTimeout(() => {
    region.textContent = pendingAnnouncements.join(". ");
    pendingAnnouncements = [];
    announceTimer = null;
  }, 100);
}

const CLUSTER_STATES = {
  CLUSTER_STATE_CREATING: ["Creating", "busy"],
  CLUSTER_STATE_ACTIVE: ["Active", "ok"],
  CLUSTER_STATE_UPDATING: ["Updating", "busy"],
  CLUSTER_STATE_REBOOTING_BROKER: ["Rebooting broker", "busy"],
  CLUSTER_STATE_HEALING: ["Healing", "warn"],
  CLUSTER_STATE_DELETING: ["Deleting", "busy"],
  CLUSTER_STATE_FAILED: ["Failed", "bad"],
};
const NODE_STATES = {
  NODE_STATE_PENDING: ["Pending", "none"],
  NODE_STATE_STARTING: ["Starting", "busy"],
  NODE_STATE_RUNNING: ["Running", "ok"],
  NODE_STATE_UNHEALTHY: ["Unhealthy", "bad"],
  NODE_STATE_STOPPED: ["Stopped", "none"],
};
const OPERATION_STATES = {
  OPERATION_STATE_PENDING: ["Pending", "none"],
  OPERATION_STATE_RUNNING: ["Running", "busy"],
  OPERATION_STATE_SUCCEEDED: ["Succeeded", "ok"],
  OPERATION_STATE_FAILED: ["Failed", "bad"],
};
const STEP_STATES = {
  STEP_STATE_PENDING: ["Pending", "none"],
  STEP_STATE_RUNNING: ["Running", "busy"],
  STEP_STATE_DONE: ["Done", "ok"],
  STEP_STATE_FAILED: ["Failed", "bad"],
  STEP_STATE_SKIPPED: ["Skipped", "none"],
};
const HOST_HEALTH = {
  HOST_HEALTH_UNKNOWN: ["Unknown", "none"],
  HOST_HEALTH_HEALTHY: ["Healthy", "ok"],
  HOST_HEALTH_UNREACHABLE: ["Unreachable", "bad"],
};

/** A label for an enum value the table does not know: CLUSTER_STATE_FOO_BAR -> "Foo bar". */
function fallbackLabel(value, prefix) {
  const words = String(value || "unknown").replace(prefix, "").toLowerCase().replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function badge(table, prefix, value) {
  const [label, kind] = table[value] || [fallbackLabel(value, prefix), "none"];
  return h("span", { class: `badge ${kind}`, "data-state": value }, label);
}

export const clusterStateLabel = (s) => (CLUSTER_STATES[s] || [fallbackLabel(s, "CLUSTER_STATE_")])[0];
export const clusterBadge = (s) => badge(CLUSTER_STATES, "CLUSTER_STATE_", s);
export const nodeBadge = (s) => badge(NODE_STATES, "NODE_STATE_", s);
export const operationBadge = (s) => badge(OPERATION_STATES, "OPERATION_STATE_", s);
export const stepBadge = (s) => badge(STEP_STATES, "STEP_STATE_", s);
export const hostBadge = (s) => badge(HOST_HEALTH, "HOST_HEALTH_", s);
export const roleLabel = (r) => (r === "NODE_ROLE_CONTROLLER" ? "Controller" : r === "NODE_ROLE_BROKER" ? "Broker" : fallbackLabel(r, "NODE_ROLE_"));
export const operationTypeLabel = (t) => fallbackLabel(t, "OPERATION_TYPE_");

/** Whether a cluster in this state is changing by itself (so pages refresh). */
export function isChanging(state) {
  return ["CLUSTER_STATE_CREATING", "CLUSTER_STATE_DELETING", "CLUSTER_STATE_UPDATING",
    "CLUSTER_STATE_REBOOTING_BROKER", "CLUSTER_STATE_HEALING"].includes(state);
}

/** A timestamp (ms since the epoch, maybe as a string; 0 = not yet) as local date and time. */
export function formatTime(ms) {
  const n = Number(ms || 0);
  if (!n) return "—";
  const d = new Date(n);
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A time element for `ms`, with the ISO instant as its machine-readable value. */
export function timeEl(ms) {
  const n = Number(ms || 0);
  if (!n) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: new Date(n).toISOString() }, formatTime(n));
}

/** Bytes (maybe a string) as GiB/TiB, e.g. "100 GiB". */
export function formatBytes(bytes) {
  const n = Number(bytes || 0);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/** A duration between two ms timestamps (end 0 = now), e.g. "6 s", "2 min 5 s". */
export function formatDuration(startMs, endMs) {
  const start = Number(startMs || 0);
  if (!start) return "—";
  const end = Number(endMs || 0) || Date.now();
  const s = Math.max(0, Math.round((end - start) / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** An error box for an ApiError (or any Error). */
export function errorAlert(err, what) {
  const detail = err.reason ? ` (${err.status || ""} ${err.reason})` : err.status ? ` (HTTP ${err.status})` : "";
  return h("div", { class: "alert", role: "alert" },
    h("h2", {}, what),
    h("p", {}, `${err.message}${detail}`));
}

/**
 * Copies `text` to the clipboard: the Clipboard API where the page may use it (a secure
 * context: https or localhost), else a hidden textarea and execCommand.
 */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused: fall through to the old way.
    }
  }
  const area = h("textarea", { "aria-hidden": "true", class: "offscreen", tabindex: "-1" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A "Copy" button for the text `get()` returns; says "Copied" (and announces it). */
export function copyButton(label, get, extra = {}) {
  const button = h("button", { type: "button", class: "secondary", ...extra }, label);
  button.addEventListener("click", async () => {
    const ok = await copyText(get());
    button.textContent = ok ? "Copied ✓" : "Copy failed: select and copy by hand";
    announce(ok ? "Copied to the clipboard" : "Copying failed; select the text and copy it by hand");
    setTimeout(() => (button.textContent = label), 2500);
  });
  return button;
}

/** The page heading, focusable so that navigation can move focus to it. */
export function pageTitle(text) {
  document.title = `${text} · Ferry console`;
  return h("h1", { tabindex: "-1" }, text);
}

/** Replaces `el`'s children with `children` (flattening arrays, skipping null/false). */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
