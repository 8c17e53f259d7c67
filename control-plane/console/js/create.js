// Creating a cluster, as MSK's console does it: Quick create (the defaults, shown before
// confirming) or Custom create in steps (cluster settings, security, review and create).
//
// Every rule the console can check by itself is checked while typing and again before
// submitting, and explained beside its field. Whatever the API still refuses comes back as
// field violations (`name`, `broker_count`, `zones[1]`, `broker_config[num.partitions]`, ...),
// which are shown beside the fields they concern, with a summary above the form.

import { api, session } from "./api.js";
import { announce, errorAlert, formatBytes, h, pageTitle, setChildren } from "./ui.js";

/** The API's rules (control-plane/src/spec.rs), checked here before submitting. */
const NAME_LEN_MAX = 64;
const BROKER_COUNT_MAX = 60;
const STORAGE_GIB_MIN = 1;
const STORAGE_GIB_MAX = 16384;
/** Defaults: what Quick create uses, and where Custom create starts. */
const DEFAULT_BROKERS_PER_ZONE = 1;
const DEFAULT_CONTROLLERS = 3;
const DEFAULT_STORAGE_GIB = 10;
const DEFAULT_ZONES_MAX = 3;

const STEPS = ["Cluster settings", "Security", "Review and create"];

export function renderCreate(main) {
  main.append(
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("ol", {}, h("li", {}, h("a", { href: "#/clusters" }, "Clusters")), h("li", { "aria-current": "page" }, "Create cluster"))),
    pageTitle("Create cluster"));
  if (!session.canChange) {
    main.append(h("div", { class: "alert info", role: "note" },
      h("p", {}, `Your role (${session.claims?.role ?? "unknown"}) cannot create clusters; the admin role can.`)));
    return null;
  }
  const body = h("div", {}, h("p", { class: "muted" }, "Loading the zones and versions on offer…"));
  main.append(body);
  let alive = true;
  Promise.all([api.consoleConfig(), api.listHosts()])
    .then(([config, hosts]) => {
      if (alive) setChildren(body, createForm(deployment(config, hosts)));
    })
    .catch((err) => alive && setChildren(body, errorAlert(err, "The zones and versions on offer could not be read")));
  return () => (alive = false);
}

/** What can be chosen: versions (newest last), zones with their host counts. */
function deployment(config, hosts) {
  const zones = new Map();
  for (const host of hosts) {
    const z = zones.get(host.zone) || { name: host.zone, hosts: 0, healthy: 0 };
    z.hosts++;
    if (host.health === "HOST_HEALTH_HEALTHY") z.healthy++;
    zones.set(host.zone, z);
  }
  return {
    versions: config.kafkaVersions || [],
    zones: [...zones.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
}

function randomName() {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return `cluster-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function requestId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------------------
// Fields: each has an input (or fieldset), an error line, and a rule.

/** The form's fields by key; `read()` gives the current choice, `check()` its error or "". */
class Fields {
  constructor() {
    this.map = new Map();
  }
  add(key, { control, error, read, check }) {
    this.map.set(key, { control, error, read, check });
  }
  value(key) {
    return this.map.get(key).read();
  }
  /** Shows `message` (or clears it) beside field `key`. */
  show(key, message) {
    const f = this.map.get(key);
    if (!f) return false;
    f.error.textContent = message || "";
    const targets = f.control.matches("fieldset") ? f.control.querySelectorAll("input") : [f.control];
    for (const t of targets) {
      if (message) t.setAttribute("aria-invalid", "true");
      else t.removeAttribute("aria-invalid");
    }
    return true;
  }
  /** Checks one field and shows the result; returns the message. */
  checkOne(key) {
    const message = this.map.get(key).check();
    this.show(key, message);
    return message;
  }
  /** Checks every field (or those in `keys`); returns [[key, message], ...] of failures. */
  checkAll(keys = [...this.map.keys()]) {
    return keys.map((k) => [k, this.checkOne(k)]).filter(([, m]) => m);
  }
  focus(key) {
    const f = this.map.get(key);
    const target = f.control.matches("fieldset") ? f.control.querySelector("input") : f.control;
    target.focus();
  }
}

/** A labelled field: label, control, hint, error, in one div. */
function field(id, labelText, control, hintText) {
  const error = h("p", { class: "field-error", id: `${id}-error` });
  const hint = hintText ? h("p", { class: "hint", id: `${id}-hint` }, hintText) : null;
  control.setAttribute("aria-describedby", [hint ? `${id}-hint` : "", `${id}-error`].filter(Boolean).join(" "));
  return { el: h("div", { class: "field" }, h("label", { for: id }, labelText), control, hint, error), error, hint };
}

function nameField(fields, initial) {
  const input = h("input", { type: "text", id: "name", name: "name", autocomplete: "off", spellcheck: "false", maxlength: 200, required: true });
  input.value = initial;
  const f = field("name", "Cluster name", input,
    `1 to ${NAME_LEN_MAX} letters, digits and hyphens; unique in your tenant. It cannot be changed later.`);
  fields.add("name", {
    control: input,
    error: f.error,
    read: () => input.value.trim(),
    check: () => {
      const v = input.value.trim();
      if (!v) return "Enter a name for the cluster.";
      if (v.length > NAME_LEN_MAX) return `A name has at most ${NAME_LEN_MAX} characters; this one has ${v.length}.`;
      const bad = [...v].find((c) => !/[A-Za-z0-9-]/.test(c));
      if (bad !== undefined) return `A name may contain only letters, digits and '-', not ${bad === " " ? "a space" : JSON.stringify(bad)}.`;
      return "";
    },
  });
  input.addEventListener("input", () => fields.checkOne("name"));
  return f.el;
}

/** Broker config overrides, one `name=value` per line, as a Kafka properties file. */
function parseConfig(text) {
  const config = {};
  const problems = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      problems.push(`Line ${i + 1} (“${line}”) is not name=value.`);
      return;
    }
    const key = line.slice(0, eq).trim();
    if (key in config) problems.push(`Line ${i + 1} sets ${key} a second time.`);
    config[key] = line.slice(eq + 1).trim();
  });
  return { config, problems };
}

// ---------------------------------------------------------------------------------------

function createForm(dep) {
  const root = h("div", {});
  if (!dep.zones.length) {
    root.append(h("div", { class: "alert", role: "alert" },
      h("p", {}, "No host has registered with the control plane, so there is nowhere to run a cluster. Start an agent (ferry dev starts three).")));
    return root;
  }
  const content = h("div", {});
  const method = (value, title, text, checked) =>
    h("label", {},
      h("input", { type: "radio", name: "method", value, id: `method-${value}`, checked, onchange: () => show(value) }),
      " ", h("strong", {}, title), h("span", { class: "muted" }, text));
  root.append(
    h("fieldset", { class: "methods-set" },
      h("legend", {}, "Creation method"),
      h("div", { class: "methods" },
        method("quick", "Quick create", "Sensible defaults you can read before confirming; only the name to choose.", true),
        method("custom", "Custom create", "Choose the version, zones, broker and controller counts, storage and broker configuration."))),
    content);
  const show = (which) => setChildren(content, which === "quick" ? quickCreate(dep) : customCreate(dep));
  show("quick");
  return root;
}

/** The defaults Quick create uses (and Custom create starts from). */
function defaults(dep) {
  const zones = dep.zones.slice(0, DEFAULT_ZONES_MAX).map((z) => z.name);
  return {
    kafkaVersion: dep.versions[dep.versions.length - 1] || "",
    zones,
    brokersPerZone: DEFAULT_BROKERS_PER_ZONE,
    controllers: DEFAULT_CONTROLLERS,
    storageGib: DEFAULT_STORAGE_GIB,
    config: {},
  };
}

function buildRequest(name, s) {
  return {
    spec: {
      name,
      kafkaVersion: s.kafkaVersion,
      brokerCount: s.brokersPerZone * s.zones.length,
      controllerCount: s.controllers,
      zones: s.zones,
      storagePerBrokerBytes: (BigInt(s.storageGib) << 30n).toString(),
      brokerConfig: s.config,
      tags: s.tags || {},
    },
    clientRequestId: requestId(),
  };
}

function quickCreate(dep) {
  const fields = new Fields();
  const d = defaults(dep);
  const summary = h("div", { id: "error-summary", tabindex: "-1" });
  const submit = h("button", { type: "submit", id: "create-submit" }, "Create cluster");
  const row = (k, v, later) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v), h("td", {}, later));
  const form = h("form", { novalidate: true, "aria-labelledby": "quick-title" },
    h("div", { class: "panel" },
      h("h2", { id: "quick-title" }, "Quick create"),
      summary,
      nameField(fields, randomName()),
      h("div", { class: "table-wrap" },
        h("table", { id: "quick-defaults" },
          h("caption", {}, "All cluster settings Quick create uses"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Setting"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Editable after creation"))),
          h("tbody", {},
            row("Apache Kafka version", d.kafkaVersion, "No (not yet)"),
            row("Zones", d.zones.join(", "), "No"),
            row("Brokers", `${d.brokersPerZone * d.zones.length} (${d.brokersPerZone} per zone)`, "Not yet from the console"),
            row("Controllers (KRaft metadata quorum)", String(d.controllers), "No"),
            row("Storage per broker", `${d.storageGib} GiB`, "No"),
            row("Broker configuration", "Ferry defaults (Kafka's)", "No"),
            row("Client connections", "PLAINTEXT listeners (no TLS, no SASL yet)", "No"),
            row("API access", "Bearer tokens with roles (admin, operator, viewer)", "—")))),
      h("div", { class: "actions" }, submit, h("a", { class: "button secondary", href: "#/clusters" }, "Cancel"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitCreate({ fields, summary, submit, request: () => buildRequest(fields.value("name"), d), onFieldErrors: () => {} });
  });
  return form;
}

function customCreate(dep) {
  const fields = new Fields();
  const d = defaults(dep);
  let step = 0;

  // Step 1: cluster settings.
  const version = h("select", { id: "kafka-version", name: "kafkaVersion" },
    dep.versions.map((v) => h("option", { value: v, selected: v === d.kafkaVersion }, v)));
  const versionField = field("kafka-version", "Apache Kafka version", version,
    "The version the brokers present to clients (ApiVersions). Upgrades are not offered yet.");
  fields.add("kafka-version", { control: version, error: versionField.error, read: () => version.value, check: () => (version.value ? "" : "Choose a version.") });

  const zoneBoxes = dep.zones.map((z) =>
    h("label", {},
      h("input", { type: "checkbox", name: "zones", value: z.name, id: `zone-${z.name}`, checked: d.zones.includes(z.name) }),
      `${z.name}`, h("span", { class: "muted" }, `(${z.hosts} host${z.hosts === 1 ? "" : "s"}, ${z.healthy} healthy)`)));
  const zonesError = h("p", { class: "field-error", id: "zones-error" });
  const zonesSet = h("fieldset", { id: "zones", "aria-describedby": "zones-hint zones-error" },
    h("legend", {}, "Zones"),
    zoneBoxes,
    h("p", { class: "hint", id: "zones-hint" }, "Failure domains (availability zones) to spread the brokers over; controllers go to distinct zones."),
    zonesError);
  const chosenZones = () => [...zonesSet.querySelectorAll("input:checked")].map((i) => i.value);
  fields.add("zones", { control: zonesSet, error: zonesError, read: chosenZones, check: () => (chosenZones().length ? "" : "Choose at least one zone.") });

  const perZone = h("input", { type: "number", id: "brokers-per-zone", name: "brokersPerZone", min: 1, max: BROKER_COUNT_MAX, step: 1, value: d.brokersPerZone, inputmode: "numeric" });
  const total = h("span", { id: "broker-total" });
  const perZoneField = field("brokers-per-zone", "Brokers per zone", perZone, [total,
    " Brokers are spread evenly, so the total is always a multiple of the number of zones; a cluster has 1 to 60 brokers."]);
  const brokersCheck = () => {
    const raw = perZone.value.trim();
    const n = Number(raw);
    const z = chosenZones().length;
    if (!raw || !Number.isInteger(n) || n < 1) return "Enter a whole number of brokers per zone, at least 1.";
    if (z && n * z > BROKER_COUNT_MAX) {
      return `${n} per zone × ${z} zones = ${n * z} brokers, but a cluster has at most ${BROKER_COUNT_MAX}. Choose at most ${Math.floor(BROKER_COUNT_MAX / z)} per zone.`;
    }
    return "";
  };
  fields.add("brokers-per-zone", { control: perZone, error: perZoneField.error, read: () => Number(perZone.value), check: brokersCheck });
  const updateTotal = () => {
    const n = Number(perZone.value) || 0;
    const z = chosenZones().length;
    total.textContent = `Total: ${n * z} broker${n * z === 1 ? "" : "s"} (${n} per zone × ${z} zone${z === 1 ? "" : "s"}).`;
  };

  const controllerRadio = (n) =>
    h("label", {}, h("input", { type: "radio", name: "controllers", value: n, id: `controllers-${n}`, checked: n === d.controllers }), String(n));
  const controllersError = h("p", { class: "field-error", id: "controllers-error" });
  const controllersSet = h("fieldset", { id: "controllers", "aria-describedby": "controllers-hint controllers-error" },
    h("legend", {}, "Controllers"),
    controllerRadio(3), controllerRadio(5),
    h("p", { class: "hint", id: "controllers-hint" }, "The KRaft metadata quorum: 3 tolerates one failure, 5 tolerates two."),
    controllersError);
  const chosenControllers = () => Number(controllersSet.querySelector("input:checked")?.value || 0);
  fields.add("controllers", { control: controllersSet, error: controllersError, read: chosenControllers, check: () => ([3, 5].includes(chosenControllers()) ? "" : "Choose 3 or 5 controllers.") });

  const storage = h("input", { type: "number", id: "storage", name: "storageGib", min: STORAGE_GIB_MIN, max: STORAGE_GIB_MAX, step: 1, value: d.storageGib, inputmode: "numeric" });
  const storageField = field("storage", "Storage per broker (GiB)", storage, `${STORAGE_GIB_MIN} to ${STORAGE_GIB_MAX} GiB reserved on the host for each broker's logs.`);
  fields.add("storage", {
    control: storage, error: storageField.error, read: () => Number(storage.value),
    check: () => {
      const n = Number(storage.value);
      return storage.value.trim() && Number.isInteger(n) && n >= STORAGE_GIB_MIN && n <= STORAGE_GIB_MAX
        ? "" : `Enter a whole number of GiB from ${STORAGE_GIB_MIN} to ${STORAGE_GIB_MAX}.`;
    },
  });

  const config = h("textarea", { id: "broker-config", name: "brokerConfig", spellcheck: "false", placeholder: "num.partitions=6\nlog.retention.ms=86400000" });
  const configField = field("broker-config", "Broker configuration overrides (optional)", config,
    "One Kafka broker setting per line, as name=value (a properties file). Lines starting with # are ignored. Anything not set keeps Kafka's default.");
  fields.add("broker-config", { control: config, error: configField.error, read: () => parseConfig(config.value).config, check: () => parseConfig(config.value).problems.join(" ") });

  const tags = h("textarea", { id: "tags", name: "tags", spellcheck: "false", class: "short", placeholder: "team=payments\nenv=staging" });
  const tagsField = field("tags", "Tags (optional)", tags,
    "Your labels for the cluster, one key=value per line; at most 50, keys starting with ferry: are reserved.");
  fields.add("tags", {
    control: tags, error: tagsField.error, read: () => parseConfig(tags.value).config,
    check: () => {
      const { config: parsed, problems } = parseConfig(tags.value);
      if (Object.keys(parsed).length > 50) problems.push(`At most 50 tags; these are ${Object.keys(parsed).length}.`);
      const reserved = Object.keys(parsed).filter((k) => k.startsWith("ferry:"));
      if (reserved.length) problems.push(`Keys starting with ferry: are reserved (${reserved.join(", ")}).`);
      return problems.join(" ");
    },
  });

  for (const [key, control] of [["brokers-per-zone", perZone], ["storage", storage], ["broker-config", config], ["tags", tags]]) {
    control.addEventListener("input", () => fields.checkOne(key));
  }
  perZone.addEventListener("input", updateTotal);
  zonesSet.addEventListener("change", () => {
    updateTotal();
    fields.checkOne("zones");
    fields.checkOne("brokers-per-zone");
  });
  updateTotal();

  const settingsKeys = ["name", "kafka-version", "zones", "brokers-per-zone", "controllers", "storage", "broker-config", "tags"];
  const panels = [
    h("section", { class: "panel", "aria-labelledby": "step-1-title" },
      h("h2", { id: "step-1-title" }, "Step 1: Cluster settings"),
      nameField(fields, ""),
      versionField.el,
      zonesSet,
      perZoneField.el,
      controllersSet,
      storageField.el,
      configField.el,
      tagsField.el),
    h("section", { class: "panel", "aria-labelledby": "step-2-title" },
      h("h2", { id: "step-2-title" }, "Step 2: Security"),
      h("p", {}, "What Ferry offers today, stated plainly:"),
      h("fieldset", { id: "client-security" },
        h("legend", {}, "Client connections to brokers"),
        h("label", {}, h("input", { type: "radio", name: "transport", value: "plaintext", checked: true }), "PLAINTEXT (no encryption, no client authentication)"),
        h("label", {}, h("input", { type: "radio", name: "transport", value: "tls", disabled: true }), "TLS — not available yet"),
        h("label", {}, h("input", { type: "radio", name: "transport", value: "sasl", disabled: true }), "SASL/SCRAM over TLS — not available yet")),
      h("dl", { class: "summary" },
        h("dt", {}, "Kafka clients"), h("dd", {}, "Connect over PLAINTEXT listeners. Anyone who can reach a broker's port can produce and consume; keep brokers on a private network."),
        h("dt", {}, "Authorization in Kafka"), h("dd", {}, "No ACLs yet."),
        h("dt", {}, "Control-plane API"), h("dd", {}, "Bearer tokens (JWT) carrying a tenant and a role: admin creates and deletes, operator changes running clusters, viewer reads. This console uses your token."),
        h("dt", {}, "Encryption at rest"), h("dd", {}, "Whatever the host's disks provide."))),
    h("section", { class: "panel", "aria-labelledby": "step-3-title" },
      h("h2", { id: "step-3-title" }, "Step 3: Review and create"),
      h("div", { id: "review" })),
  ];
  const summary = h("div", { id: "error-summary", tabindex: "-1" });
  const stepList = h("ol", { class: "steps", "aria-label": "Steps" }, STEPS.map((s) => h("li", {}, s)));
  const back = h("button", { type: "button", class: "secondary", id: "step-back" }, "Back");
  const next = h("button", { type: "button", id: "step-next" }, "Next");
  const submit = h("button", { type: "submit", id: "create-submit" }, "Create cluster");
  const form = h("form", { novalidate: true, "aria-label": "Custom create" },
    stepList, summary, panels,
    h("div", { class: "actions" }, back, next, submit, h("a", { class: "button secondary", href: "#/clusters" }, "Cancel")));

  const settings = () => ({
    kafkaVersion: fields.value("kafka-version"),
    zones: fields.value("zones"),
    brokersPerZone: fields.value("brokers-per-zone"),
    controllers: fields.value("controllers"),
    storageGib: fields.value("storage"),
    config: fields.value("broker-config"),
    tags: fields.value("tags"),
  });

  function go(to, { focus = true } = {}) {
    step = to;
    panels.forEach((p, i) => (p.hidden = i !== step));
    [...stepList.children].forEach((li, i) => {
      if (i === step) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
      li.classList.toggle("done", i < step);
    });
    back.hidden = step === 0;
    next.hidden = step === STEPS.length - 1;
    submit.hidden = step !== STEPS.length - 1;
    if (step === 2) renderReview(panels[2].querySelector("#review"), fields.value("name"), settings(), go);
    if (focus) {
      const heading = panels[step].querySelector("h2");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  next.addEventListener("click", () => {
    if (step === 0) {
      const failed = fields.checkAll(settingsKeys);
      if (failed.length) {
        showSummary(summary, fields, failed);
        return;
      }
    }
    summary.replaceChildren();
    go(step + 1);
  });
  back.addEventListener("click", () => go(step - 1));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (step !== STEPS.length - 1) return;
    submitCreate({
      fields, summary, submit,
      request: () => buildRequest(fields.value("name"), settings()),
      onFieldErrors: () => go(0, { focus: false }),
    });
  });
  go(0, { focus: false });
  return form;
}

function renderReview(target, name, s, go) {
  const request = buildRequest(name, s);
  const configLines = Object.entries(s.config).map(([k, v]) => `${k}=${v}`);
  const row = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  setChildren(target, 
    h("div", { class: "actions" }, h("h3", {}, "Cluster settings"),
      h("button", { type: "button", class: "link", onclick: () => go(0) }, "Edit", h("span", { class: "visually-hidden" }, " cluster settings"))),
    h("dl", { class: "summary", id: "review-settings" },
      row("Name", name),
      row("Apache Kafka version", s.kafkaVersion),
      row("Zones", s.zones.join(", ")),
      row("Brokers", `${s.brokersPerZone * s.zones.length} (${s.brokersPerZone} per zone)`),
      row("Controllers", String(s.controllers)),
      row("Storage per broker", formatBytes(Number(s.storageGib) * 2 ** 30)),
      row("Broker configuration", configLines.length ? h("code", {}, configLines.join("; ")) : "Kafka's defaults"),
      row("Tags", Object.keys(s.tags).length ? h("code", {}, Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join("; ")) : "None")),
    h("div", { class: "actions" }, h("h3", {}, "Security"),
      h("button", { type: "button", class: "link", onclick: () => go(1) }, "Edit", h("span", { class: "visually-hidden" }, " security"))),
    h("dl", { class: "summary" }, row("Client connections", "PLAINTEXT"), row("API access", "Bearer tokens with roles")),
    h("details", {},
      h("summary", {}, "The equivalent API request"),
      h("pre", { class: "config" }, `POST /v1/clusters\n${JSON.stringify({ ...request, clientRequestId: undefined }, null, 2)}`)));
}

/** Lists `failed` ([[key, message]]) above the form; each entry moves focus to its field. */
function showSummary(summary, fields, failed, title = "Fix these before creating the cluster") {
  setChildren(summary, h("div", { class: "alert", role: "alert" },
    h("h2", {}, title),
    h("ul", {}, failed.map(([key, message]) =>
      h("li", {}, h("button", { type: "button", class: "link", onclick: () => fields.focus(key) }, message))))));
  summary.focus();
}

/** The form field an API field violation concerns, or null. */
function fieldFor(apiField) {
  const path = apiField.replace(/^spec\./, "").replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const base = path.split("[")[0];
  return {
    name: "name",
    kafka_version: "kafka-version",
    broker_count: "brokers-per-zone",
    controller_count: "controllers",
    zones: "zones",
    storage_per_broker_bytes: "storage",
    broker_config: "broker-config",
    tags: "tags",
  }[base] || null;
}

/** "broker_config[num.partitions]" -> "num.partitions: "; "zones[1]" -> "zone 2: ". */
function violationPrefix(apiField) {
  const m = apiField.match(/\[([^\]]*)\]$/);
  if (!m) return "";
  return /^\d+$/.test(m[1]) && apiField.includes("zones") ? `zone ${Number(m[1]) + 1}: ` : `${m[1]}: `;
}

async function submitCreate({ fields, summary, submit, request, onFieldErrors }) {
  summary.replaceChildren();
  const failed = fields.checkAll([...fields.map.keys()]);
  if (failed.length) {
    onFieldErrors();
    showSummary(summary, fields, failed);
    return;
  }
  submit.disabled = true;
  submit.textContent = "Creating…";
  try {
    const response = await api.createCluster(request());
    announce(`Cluster ${response.cluster.spec.name} is being created`);
    location.hash = `#/clusters/${encodeURIComponent(response.cluster.id)}`;
  } catch (err) {
    const byField = new Map();
    const unplaced = [];
    for (const v of err.fieldViolations) {
      const key = fieldFor(v.field);
      const prefix = violationPrefix(v.field);
      const text = v.description.includes(prefix.slice(0, -2)) ? v.description : `${prefix}${v.description}`;
      if (key && fields.map.has(key)) byField.set(key, [...(byField.get(key) || []), text]);
      else unplaced.push(`${v.field}: ${v.description}`);
    }
    if (err.reason === "NAME_TAKEN" && fields.map.has("name")) byField.set("name", [err.message]);
    if (byField.size) {
      onFieldErrors();
      for (const [key, messages] of byField) fields.show(key, messages.join(" "));
      const listed = [...byField].map(([key, messages]) => [key, messages.join(" ")]);
      showSummary(summary, fields, listed, "The API refused the cluster");
      if (unplaced.length) summary.firstChild.append(h("p", {}, unplaced.join(" ")));
    } else {
      setChildren(summary, errorAlert(err, "The cluster could not be created"));
      summary.focus();
    }
  } finally {
    submit.disabled = false;
    submit.textContent = "Create cluster";
  }
}
