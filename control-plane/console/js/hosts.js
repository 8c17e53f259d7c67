// Hosts: the zones, the hosts their agents registered, each host's capacity and health, and
// which nodes of which clusters run where. The API requires the admin role (which sees only its
// own tenant's nodes on the hosts) or service-operator (which sees every tenant's).

import { api, session } from "./api.js";
import { errorAlert, formatBytes, h, hostBadge, nodeBadge, pageTitle, roleLabel, timeEl, setChildren } from "./ui.js";

const REFRESH_MS = 5000;

export function renderHosts(main) {
  let timer = null;
  let stopped = false;
  const body = h("div", { id: "hosts" }, h("p", { class: "muted" }, "Loading…"));
  main.append(
    h("div", { class: "page-head" },
      h("div", {}, pageTitle("Hosts"),
        h("p", {}, "Machines whose agents registered with this control plane, by zone, and what runs on them."))),
    body);

  async function load() {
    clearTimeout(timer);
    if (!session.canChange) {
      setChildren(body, h("div", { class: "alert info", role: "note" },
        h("p", {}, `The hosts page needs the admin role; you are signed in as ${session.claims?.role ?? "unknown"}.`)));
      return;
    }
    try {
      const [hosts, clusters] = await Promise.all([api.listHosts(), api.listClusters().catch(() => [])]);
      if (stopped) return;
      const names = new Map(clusters.map((c) => [c.id, c.spec?.name]));
      setChildren(body, render(hosts, names));
    } catch (err) {
      if (stopped) return;
      setChildren(body, errorAlert(err, "The hosts could not be listed"));
    }
    timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function render(hosts, names) {
  if (!hosts.length) return h("div", { class: "empty" }, h("p", {}, "No host has registered. Start an agent: ferry agent, or ferry dev for three."));
  const zones = new Map();
  for (const host of hosts) {
    if (!zones.has(host.zone)) zones.set(host.zone, []);
    zones.get(host.zone).push(host);
  }
  const nodeCount = hosts.reduce((n, host) => n + (host.nodes || []).length, 0);
  return [
    h("p", { class: "muted", id: "hosts-summary" },
      `${zones.size} zone${zones.size === 1 ? "" : "s"}, ${hosts.length} host${hosts.length === 1 ? "" : "s"}, ${nodeCount} node${nodeCount === 1 ? "" : "s"} running or assigned.`),
    [...zones.keys()].sort().map((zone) => h("section", { class: "zone-group", "aria-labelledby": `zone-${zone}-title` },
      h("h2", { id: `zone-${zone}-title` }, `Zone ${zone}`),
      h("div", { class: "table-wrap" }, h("table", { "data-zone": zone },
        h("caption", { class: "visually-hidden" }, `Hosts in zone ${zone}`),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Host"), h("th", { scope: "col" }, "Health"), h("th", { scope: "col" }, "Address"),
          h("th", { scope: "col" }, "Ports"), h("th", { scope: "col" }, "Capacity"), h("th", { scope: "col" }, "Last seen"),
          h("th", { scope: "col" }, "Runs"))),
        h("tbody", {}, zones.get(zone).map((host) => hostRow(host, names))))))),
  ];
}

function hostRow(host, names) {
  const nodes = host.nodes || [];
  const cap = host.capacity || {};
  return h("tr", { "data-host": host.id },
    h("th", { scope: "row" }, host.id),
    h("td", {}, hostBadge(host.health)),
    h("td", { class: "mono" }, host.address),
    h("td", { class: "mono" }, host.ports ? `${host.ports.lo}–${host.ports.hi}` : "—"),
    h("td", {}, `${nodes.length} of ${cap.maxNodes ?? "?"} nodes`, h("br"), h("span", { class: "muted" }, `${formatBytes(cap.storageBytes)} storage`)),
    h("td", {}, timeEl(host.lastSeenAt)),
    h("td", {}, nodes.length
      ? h("ul", { class: "runs" }, nodes.map((hn) => h("li", {},
        h("a", { href: `#/clusters/${encodeURIComponent(hn.clusterId)}` }, names.get(hn.clusterId) || hn.clusterId),
        ` · ${roleLabel(hn.node?.role)} ${hn.node?.nodeId} `, nodeBadge(hn.node?.state))))
      : h("span", { class: "muted" }, "nothing")));
}
