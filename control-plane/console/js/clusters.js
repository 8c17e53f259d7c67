// The cluster list: name, state, version, brokers, controllers, zones, created; a name filter;
// refreshes by itself while any cluster is changing (creating, deleting, ...).

import { api, session } from "./api.js";
import { clusterBadge, errorAlert, h, isChanging, pageTitle, timeEl, setChildren } from "./ui.js";

/** How often the list refreshes while something changes, and otherwise. */
const REFRESH_CHANGING_MS = 2000;
const REFRESH_IDLE_MS = 15000;
/** Wait after the last keystroke in the filter before asking the API. */
const FILTER_DEBOUNCE_MS = 250;

export function renderClusters(main) {
  let timer = null;
  let debounce = null;
  let stopped = false;
  let generation = 0;

  const filter = h("input", {
    type: "search",
    id: "cluster-filter",
    name: "filter",
    autocomplete: "off",
    "aria-describedby": "cluster-filter-hint",
  });
  const status = h("p", { class: "status-line", id: "list-status", role: "status" });
  const body = h("div", { id: "cluster-list" });

  main.append(
    h("div", { class: "page-head" },
      h("div", {}, pageTitle("Clusters"),
        h("p", {}, `Kafka clusters of tenant ${session.claims?.tenant ?? "?"}.`)),
      session.canChange ? h("a", { class: "button", href: "#/create", id: "create-cluster" }, "Create cluster") : null),
    h("form", { role: "search", class: "field", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "cluster-filter" }, "Filter by name"),
      filter,
      h("p", { class: "hint", id: "cluster-filter-hint" }, "Shows the clusters whose name starts with this text.")),
    status,
    body);

  async function load() {
    clearTimeout(timer);
    const mine = ++generation;
    let clusters;
    try {
      clusters = await api.listClusters(filter.value.trim());
    } catch (err) {
      if (stopped || mine !== generation) return;
      setChildren(body, errorAlert(err, "The clusters could not be listed"));
      timer = setTimeout(load, REFRESH_IDLE_MS);
      return;
    }
    if (stopped || mine !== generation) return;
    setChildren(body, table(clusters, filter.value.trim()));
    const changing = clusters.filter((c) => isChanging(c.status?.state)).length;
    status.textContent = changing
      ? `${changing} cluster${changing > 1 ? "s" : ""} changing; refreshing every ${REFRESH_CHANGING_MS / 1000} s.`
      : `${clusters.length} cluster${clusters.length === 1 ? "" : "s"}.`;
    timer = setTimeout(load, changing ? REFRESH_CHANGING_MS : REFRESH_IDLE_MS);
  }

  filter.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(load, FILTER_DEBOUNCE_MS);
  });
  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(debounce);
  };
}

function table(clusters, prefix) {
  if (!clusters.length) {
    return h("div", { class: "empty" },
      h("p", {}, prefix ? `No cluster name starts with “${prefix}”.` : "No clusters yet."),
      session.canChange && !prefix ? h("a", { class: "button", href: "#/create" }, "Create your first cluster") : null);
  }
  return h("div", { class: "table-wrap" },
    h("table", { id: "clusters-table" },
      h("caption", { class: "visually-hidden" }, "Clusters"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Name"),
        h("th", { scope: "col" }, "State"),
        h("th", { scope: "col" }, "Kafka version"),
        h("th", { scope: "col", class: "num" }, "Brokers"),
        h("th", { scope: "col", class: "num" }, "Controllers"),
        h("th", { scope: "col" }, "Zones"),
        h("th", { scope: "col" }, "Created"))),
      h("tbody", {}, clusters.map((c) =>
        h("tr", { "data-cluster": c.spec?.name, "data-id": c.id },
          h("th", { scope: "row" }, h("a", { href: `#/clusters/${encodeURIComponent(c.id)}` }, c.spec?.name || c.id)),
          h("td", {}, clusterBadge(c.status?.state)),
          h("td", {}, c.spec?.kafkaVersion),
          h("td", { class: "num" }, c.spec?.brokerCount),
          h("td", { class: "num" }, c.spec?.controllerCount),
          h("td", {}, (c.spec?.zones || []).join(", ")),
          h("td", {}, timeEl(c.createdAt)))))));
}
