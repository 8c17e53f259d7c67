// One cluster: state and its reason, the current operation's steps and progress (live), nodes
// by zone and host, "View client information" (bootstrap servers and ready-to-copy client
// configs), the operations history, and delete behind a typed-name confirmation.
//
// The page is built once; polling replaces only the parts that change, so focus, an open
// client-information panel and a half-typed confirmation survive every refresh.

import { api, session } from "./api.js";
import {
  announce, clusterBadge, clusterStateLabel, copyButton, errorAlert, formatBytes, formatDuration,
  h, isChanging, nodeBadge, operationBadge, operationTypeLabel, pageTitle, roleLabel, stepBadge, timeEl,
  setChildren,
} from "./ui.js";

/** How often the page refreshes while the cluster changes, and otherwise. */
const REFRESH_CHANGING_MS = 1000;
const REFRESH_IDLE_MS = 5000;

export function renderCluster(main, id) {
  let timer = null;
  let stopped = false;
  let cluster = null;
  /** What was last announced, so that only changes are announced. */
  const seen = { state: null, steps: new Map(), progress: new Map() };

  const title = pageTitle("Cluster");
  const badgeSlot = h("span", { id: "cluster-state" });
  const stateInfo = h("div", { id: "state-info" });
  const infoButton = h("button", {
    type: "button", class: "secondary", id: "client-info-button", "aria-expanded": "false", "aria-controls": "client-info",
  }, "View client information");
  const editButton = session.canUpdate
    ? h("button", { type: "button", class: "secondary", id: "edit-brokers", "aria-describedby": "edit-brokers-why" }, "Edit number of brokers")
    : null;
  const editWhy = h("span", { class: "visually-hidden", id: "edit-brokers-why" });
  const deleteButton = session.canChange
    ? h("button", { type: "button", class: "danger secondary", id: "delete-cluster" }, "Delete")
    : null;
  const summary = h("div", { id: "cluster-summary" });
  const operation = h("section", { class: "panel", id: "current-operation", "aria-labelledby": "operation-title" });
  const clientInfo = h("section", { class: "panel", id: "client-info", "aria-labelledby": "client-info-title", hidden: true });
  const nodes = h("section", { class: "panel", id: "nodes", "aria-labelledby": "nodes-title" });
  const history = h("section", { class: "panel", id: "operations", "aria-labelledby": "operations-title" });
  const problem = h("div", { id: "load-problem" });
  const crumbName = h("li", { "aria-current": "page" }, id);

  main.append(
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("ol", {}, h("li", {}, h("a", { href: "#/clusters" }, "Clusters")), crumbName)),
    h("div", { class: "page-head" },
      h("div", {}, h("div", { class: "actions" }, title, badgeSlot), stateInfo),
      h("div", { class: "actions" }, infoButton, editButton, editWhy, deleteButton)),
    problem, operation, clientInfo, summary, nodes, history);

  infoButton.addEventListener("click", () => {
    const open = clientInfo.hidden;
    clientInfo.hidden = !open;
    infoButton.setAttribute("aria-expanded", String(open));
    if (open) {
      renderClientInfo(clientInfo, cluster);
      clientInfo.querySelector("h2").focus();
    }
  });
  if (deleteButton) deleteButton.addEventListener("click", () => openDeleteDialog(main, cluster, () => poll()));
  if (editButton) editButton.addEventListener("click", () => openBrokerCountDialog(main, cluster, () => poll()));

  async function poll() {
    clearTimeout(timer);
    let fresh;
    let operations = [];
    try {
      fresh = await api.getCluster(id);
      operations = await api.listOperations(id).catch(() => operations);
    } catch (err) {
      if (stopped) return;
      if (err.status === 404) {
        showGone(main, cluster, id);
        return;
      }
      setChildren(problem, errorAlert(err, "The cluster could not be read; retrying"));
      timer = setTimeout(poll, REFRESH_IDLE_MS);
      return;
    }
    if (stopped) return;
    problem.replaceChildren();
    cluster = fresh;
    update(cluster, operations);
    const busy = isChanging(cluster.status?.state) || Boolean(cluster.activeOperationId);
    timer = setTimeout(poll, busy ? REFRESH_CHANGING_MS : REFRESH_IDLE_MS);
  }

  function update(c, operations) {
    const name = c.spec?.name || c.id;
    const state = c.status?.state;
    title.textContent = name;
    document.title = `${name} · Ferry console`;
    crumbName.textContent = name;
    setChildren(badgeSlot, clusterBadge(state));
    const info = c.status?.stateInfo;
    setChildren(stateInfo, info && (info.code || info.message)
      ? h("p", { class: state === "CLUSTER_STATE_FAILED" ? "alert" : "muted", id: "state-reason" },
        info.code ? h("code", {}, info.code) : null, info.code && info.message ? ": " : "", info.message || "")
      : h("p", { class: "muted", id: "state-reason" }, stateSentence(state)));
    if (seen.state && seen.state !== state) announce(`Cluster ${name} is now ${clusterStateLabel(state)}`);
    seen.state = state;

    renderSummary(summary, c);
    if (editButton) {
      // The API takes updates only on an ACTIVE cluster (one operation at a time).
      const ready = state === "CLUSTER_STATE_ACTIVE";
      editButton.disabled = !ready;
      editWhy.textContent = ready ? "" : "Available when the cluster is Active.";
    }
    const active = operations.find((o) => o.id === c.activeOperationId) || operations.find((o) => o.state === "OPERATION_STATE_RUNNING" || o.state === "OPERATION_STATE_PENDING");
    renderOperation(operation, active || operations[0], Boolean(active), seen);
    // A running operation leads the page; a finished one sits above the history.
    const anchor = active ? problem.nextSibling : history;
    if (operation.nextSibling !== anchor && anchor !== operation) anchor.before(operation);
    renderNodes(nodes, c.status?.nodes || []);
    renderHistory(history, operations);
    if (!clientInfo.hidden) refreshBootstrap(clientInfo, c);
  }

  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.getElementById("delete-dialog")?.remove();
    document.getElementById("brokers-dialog")?.remove();
  };
}

function stateSentence(state) {
  switch (state) {
    case "CLUSTER_STATE_CREATING": return "Placing nodes on hosts and starting them.";
    case "CLUSTER_STATE_ACTIVE": return "Every node is up and healthy; clients can connect.";
    case "CLUSTER_STATE_DELETING": return "Stopping the nodes and removing their data.";
    default: return "";
  }
}

function renderSummary(target, c) {
  const s = c.spec || {};
  const config = Object.entries(s.brokerConfig || {});
  const row = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  setChildren(target, h("section", { class: "panel", "aria-labelledby": "summary-title" },
    h("h2", { id: "summary-title" }, "Cluster summary"),
    h("dl", { class: "summary" },
      row("Cluster id", h("code", {}, c.id)),
      row("Apache Kafka version", s.kafkaVersion),
      row("Brokers", `${s.brokerCount} over zones ${(s.zones || []).join(", ")}`),
      row("Controllers", String(s.controllerCount)),
      row("Storage per broker", formatBytes(s.storagePerBrokerBytes)),
      row("Broker configuration", config.length ? h("code", {}, config.map(([k, v]) => `${k}=${v}`).join("; ")) : "Kafka's defaults"),
      row("Tags", Object.keys(s.tags || {}).length ? h("code", {}, Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join("; ")) : "None"),
      row("Client connections", "PLAINTEXT"),
      row("Created", timeEl(c.createdAt)),
      row("Last changed", timeEl(c.updatedAt)))));
}

function renderOperation(target, op, active, seen) {
  if (!op) {
    target.hidden = true;
    return;
  }
  target.hidden = false;
  const steps = op.steps || [];
  const progress = Number(op.progressPercent || 0);
  const label = operationTypeLabel(op.type);
  // Announce (through the page's persistent live region, since this panel is rebuilt on
  // every refresh) progress and steps that changed since the last refresh, not the first
  // render; the elapsed time is never announced, or it would be read every second.
  const progressKey = `${progress}% ${operationBadge(op.state).textContent}`;
  const before = seen.progress.get(op.id);
  if (before && before !== progressKey) announce(`${label} operation: ${progressKey}`);
  seen.progress.set(op.id, progressKey);
  for (const step of steps) {
    const before = seen.steps.get(`${op.id}/${step.name}`);
    if (before && before !== step.state && active) announce(`${step.name}: ${stepBadge(step.state).textContent}`);
    seen.steps.set(`${op.id}/${step.name}`, step.state);
  }
  setChildren(target, 
    h("h2", { id: "operation-title" }, active ? `Current operation: ${label}` : `Latest operation: ${label}`),
    h("div", { class: "progress-row" },
      h("progress", { id: "operation-progress", max: 100, value: progress, "aria-label": `${label} operation progress` }),
      h("span", { id: "operation-status" }, `${progress}% · `, operationBadge(op.state)),
      h("span", { class: "muted" }, formatDuration(op.startedAt, op.endedAt))),
    op.error?.code || op.error?.message
      ? h("p", { class: "alert", id: "operation-error" }, h("code", {}, op.error.code), ": ", op.error.message)
      : null,
    h("ol", { class: "op-steps", id: "operation-steps", "aria-label": `Steps of the ${label} operation` },
      steps.map((step) => h("li", { "data-step": step.name },
        h("span", {}, stepBadge(step.state)),
        h("span", {}, step.name, step.startedAt && Number(step.startedAt) ? h("span", { class: "muted" }, ` (${formatDuration(step.startedAt, step.endedAt)})`) : null),
        step.message ? h("span", { class: "msg" }, step.message) : null))));
}

function renderNodes(target, nodes) {
  const zones = new Map();
  for (const node of nodes) {
    if (!zones.has(node.zone)) zones.set(node.zone, []);
    zones.get(node.zone).push(node);
  }
  const healthy = nodes.filter((n) => n.state === "NODE_STATE_RUNNING").length;
  setChildren(target, 
    h("h2", { id: "nodes-title" }, "Nodes"),
    nodes.length
      ? h("p", { class: "muted" }, `${healthy} of ${nodes.length} nodes running.`)
      : h("p", { class: "muted" }, "No nodes are placed yet."),
    [...zones.keys()].sort().map((zone) => {
      const rows = zones.get(zone).sort((a, b) => a.hostId.localeCompare(b.hostId) || a.nodeId - b.nodeId);
      return h("div", { class: "zone-group table-wrap" },
        h("table", { "data-zone": zone },
          h("caption", {}, `Zone ${zone}`),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Node"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Host"),
            h("th", { scope: "col" }, "Address"), h("th", { scope: "col" }, "Health"), h("th", { scope: "col" }, "Details"))),
          h("tbody", {}, rows.map((n) => h("tr", { "data-node": n.nodeId },
            h("th", { scope: "row" }, String(n.nodeId)),
            h("td", {}, roleLabel(n.role)),
            h("td", {}, n.hostId),
            h("td", { class: "mono" }, n.role === "NODE_ROLE_BROKER" ? `${n.address}:${n.kafkaPort}` : `${n.address}:${n.controllerPort}`),
            h("td", {}, nodeBadge(n.state)),
            h("td", { class: "muted" }, n.stateMessage || ""))))));
    }));
}

function renderHistory(target, operations) {
  setChildren(target, 
    h("h2", { id: "operations-title" }, "Operations"),
    operations.length
      ? h("div", { class: "table-wrap" }, h("table", { id: "operations-table" },
        h("caption", { class: "visually-hidden" }, "Operations, newest first"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Operation"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Progress"),
          h("th", { scope: "col" }, "Started"), h("th", { scope: "col" }, "Took"), h("th", { scope: "col" }, "Error"))),
        h("tbody", {}, operations.map((o) => h("tr", {},
          h("th", { scope: "row" }, operationTypeLabel(o.type), h("br"), h("code", { class: "muted" }, o.id)),
          h("td", {}, operationBadge(o.state)),
          h("td", {}, `${o.progressPercent || 0}%`),
          h("td", {}, timeEl(o.startedAt)),
          h("td", {}, formatDuration(o.startedAt, o.endedAt)),
          h("td", {}, o.error && o.error.code ? `${o.error.code}: ${o.error.message}` : "—"))))))
      : h("p", { class: "muted" }, "No operations."));
}

// ---------------------------------------------------------------------------------------
// Client information

/** Client configurations for `bootstrap`, by client. */
function clientConfigs(bootstrap) {
  return [
    ["java", "Java client (client.properties)", "Copy Java config",
      `bootstrap.servers=${bootstrap}\nsecurity.protocol=PLAINTEXT\nacks=all\n# Kafka's default: retries never duplicate or reorder messages.\nenable.idempotence=true\n`],
    ["librdkafka", "librdkafka (confluent-kafka, kcat -F, rdkafka)", "Copy librdkafka config",
      `bootstrap.servers=${bootstrap}\nsecurity.protocol=plaintext\nacks=all\n`],
    ["python", "Python (confluent-kafka)", "Copy Python example",
      `from confluent_kafka import Producer\n\nproducer = Producer({\n    "bootstrap.servers": "${bootstrap}",\n    "security.protocol": "plaintext",\n    "acks": "all",\n})\nproducer.produce("my-topic", b"hello")\nproducer.flush(10)\n`],
    ["kcat", "Try it with kcat", "Copy kcat commands",
      `kcat -b ${bootstrap} -L\necho hello | kcat -b ${bootstrap} -t my-topic -P\nkcat -b ${bootstrap} -t my-topic -C -e\n`],
  ];
}

function renderClientInfo(target, c) {
  setChildren(target, 
    h("h2", { id: "client-info-title", tabindex: "-1" }, "Client information"),
    h("p", {}, "Clients connect to these bootstrap servers and discover every broker from them. Listeners are PLAINTEXT: no TLS and no SASL yet."),
    h("div", { id: "client-info-body" }));
  refreshBootstrap(target, c);
}

/** Fills the client information for `c` (once it has bootstrap servers). */
async function refreshBootstrap(target, c) {
  const body = target.querySelector("#client-info-body");
  if (!body || !c) return;
  let bootstrap = c.status?.bootstrapBrokers || "";
  if (!bootstrap) {
    try {
      bootstrap = (await api.bootstrapBrokers(c.id)).bootstrapBrokers || "";
    } catch {
      bootstrap = "";
    }
  }
  if (body.dataset.bootstrap === bootstrap && body.childElementCount) return;
  body.dataset.bootstrap = bootstrap;
  if (!bootstrap) {
    setChildren(body, h("p", { class: "muted" }, "Bootstrap servers appear once the brokers are placed."));
    return;
  }
  const input = h("input", { type: "text", id: "bootstrap-servers", readonly: true, value: bootstrap, "aria-describedby": "bootstrap-hint" });
  input.addEventListener("focus", () => input.select());
  setChildren(body, 
    h("div", { class: "field" },
      h("label", { for: "bootstrap-servers" }, "Bootstrap servers (PLAINTEXT)"),
      h("div", { class: "copy-row" }, input, copyButton("Copy bootstrap servers", () => bootstrap, { id: "copy-bootstrap" })),
      h("p", { class: "hint", id: "bootstrap-hint" }, `${bootstrap.split(",").length} brokers, host:port separated by commas.`)),
    clientConfigs(bootstrap).map(([key, heading, copyLabel, text]) => h("div", { class: "client-config" },
      h("h3", { id: `config-${key}-title` }, heading),
      h("pre", { class: "config", id: `config-${key}`, tabindex: "0", "aria-labelledby": `config-${key}-title` }, text),
      copyButton(copyLabel, () => text, { id: `copy-${key}` }))));
}

// ---------------------------------------------------------------------------------------
// Edit number of brokers (MSK's "Edit number of brokers": per zone, growing only)

function openBrokerCountDialog(main, c, after) {
  if (!c) return;
  document.getElementById("brokers-dialog")?.remove();
  const zones = (c.spec.zones || []).length;
  const current = c.spec.brokerCount / zones;
  const max = Math.floor(60 / zones);
  const input = h("input", { type: "number", id: "new-brokers-per-zone", min: current + 1, max, step: 1, value: current + 1, inputmode: "numeric", "aria-describedby": "new-brokers-hint new-brokers-error" });
  const hint = h("p", { class: "hint", id: "new-brokers-hint" });
  const error = h("p", { class: "field-error", id: "new-brokers-error" });
  const problem = h("div", {});
  const submit = h("button", { type: "submit", id: "confirm-brokers" }, "Save changes");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const check = () => {
    const raw = input.value.trim();
    const n = Number(raw);
    hint.textContent = `Now ${current} per zone × ${zones} zones = ${c.spec.brokerCount} brokers; ` +
      `after: ${Number.isInteger(n) ? n * zones : "?"} brokers. Existing partitions stay where they are; new topics can use the new brokers.`;
    let message = "";
    if (!raw || !Number.isInteger(n)) message = "Enter a whole number of brokers per zone.";
    else if (n <= current) message = `Choose more than the current ${current} per zone: removing brokers is not supported yet.`;
    else if (n * zones > 60) message = `${n} per zone × ${zones} zones = ${n * zones} brokers, but a cluster has at most 60. Choose at most ${max} per zone.`;
    error.textContent = message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    return message;
  };
  const dialog = h("dialog", { id: "brokers-dialog", "aria-labelledby": "brokers-title" },
    h("form", { novalidate: true },
      h("h2", { id: "brokers-title" }, `Edit number of brokers of ${c.spec.name}`),
      h("div", { class: "field" }, h("label", { for: "new-brokers-per-zone" }, "Brokers per zone"), input, hint, error),
      problem,
      h("div", { class: "actions" }, submit, cancel)));
  input.addEventListener("input", check);
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (check()) return input.focus();
    submit.disabled = true;
    try {
      await api.updateBrokerCount(c.id, c.currentVersion, Number(input.value) * zones);
      announce(`Adding brokers to ${c.spec.name}`);
      dialog.close();
      after();
    } catch (err) {
      const mine = err.fieldViolations.filter((v) => /broker_?count/i.test(v.field));
      if (mine.length) {
        error.textContent = mine.map((v) => v.description).join(" ");
        input.setAttribute("aria-invalid", "true");
        input.focus();
      } else {
        setChildren(problem, errorAlert(err, "The brokers were not added"));
      }
      submit.disabled = false;
    }
  });
  check();
  main.append(dialog);
  dialog.showModal();
  input.focus();
}

// ---------------------------------------------------------------------------------------
// Delete

function openDeleteDialog(main, c, after) {
  if (!c) return;
  document.getElementById("delete-dialog")?.remove();
  const name = c.spec.name;
  const input = h("input", { type: "text", id: "confirm-name", autocomplete: "off", spellcheck: "false", "aria-describedby": "confirm-hint delete-error" });
  const confirm = h("button", { type: "submit", class: "danger", id: "confirm-delete", disabled: true }, "Delete cluster");
  const cancel = h("button", { type: "button", class: "secondary", id: "cancel-delete" }, "Cancel");
  const error = h("div", { id: "delete-error" });
  const nodes = (c.status?.nodes || []).length;
  const dialog = h("dialog", { id: "delete-dialog", "aria-labelledby": "delete-title" },
    h("form", { novalidate: true },
      h("h2", { id: "delete-title" }, `Delete ${name}?`),
      h("p", {}, `This stops the ${nodes || c.spec.brokerCount + c.spec.controllerCount} nodes of ${name} and deletes their data: every topic and message. It cannot be undone.`),
      h("div", { class: "field" },
        h("label", { for: "confirm-name" }, "Type the cluster name to confirm"),
        input,
        h("p", { class: "hint", id: "confirm-hint" }, "The name is ", h("code", {}, name), ".")),
      error,
      h("div", { class: "actions" }, confirm, cancel)));
  input.addEventListener("input", () => (confirm.disabled = input.value !== name));
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (input.value !== name) return;
    confirm.disabled = true;
    confirm.textContent = "Deleting…";
    try {
      const latest = await api.getCluster(c.id);
      await api.deleteCluster(c.id, latest.currentVersion);
      announce(`Deleting cluster ${name}`);
      dialog.close();
      after();
    } catch (err) {
      setChildren(error, errorAlert(err, "The cluster was not deleted"));
      confirm.disabled = false;
      confirm.textContent = "Delete cluster";
    }
  });
  main.append(dialog);
  dialog.showModal();
  input.focus();
}

function showGone(main, c, id) {
  const name = c?.spec?.name || id;
  document.getElementById("delete-dialog")?.remove();
  setChildren(main, 
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("ol", {}, h("li", {}, h("a", { href: "#/clusters" }, "Clusters")), h("li", { "aria-current": "page" }, name))),
    pageTitle(name),
    h("div", { class: "alert ok", role: "status", id: "cluster-gone" },
      h("p", {}, c ? `Cluster ${name} was deleted: its nodes are stopped and their data removed.` : `There is no cluster ${id} in your tenant.`)),
    h("a", { class: "button", href: "#/clusters" }, "Back to clusters"));
  if (c) announce(`Cluster ${name} was deleted`);
}
