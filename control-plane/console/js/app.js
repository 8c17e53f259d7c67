// The console's shell: the hash router, the session header and page lifecycles.
//
// Routes (the URL fragment, so the server serves one page for all):
//   #/signin            paste a token
//   #/clusters          the cluster list
//   #/create            Quick create and Custom create
//   #/clusters/{id}     one cluster
//   #/hosts             zones, hosts, capacity, what runs where (admin, service-operator)
//
// A page is `render(main, params) -> cleanup?`; the cleanup (stopping its timers) runs when
// the route changes.

import { session } from "./api.js";
import { announce } from "./ui.js";
import { renderSignIn } from "./signin.js";
import { renderClusters } from "./clusters.js";
import { renderCreate } from "./create.js";
import { renderCluster } from "./cluster.js";
import { renderHosts } from "./hosts.js";

const ROUTES = [
  [/^#\/clusters\/?$/, renderClusters, "clusters"],
  [/^#\/create\/?$/, renderCreate, "clusters"],
  [/^#\/clusters\/([^/]+)$/, renderCluster, "clusters"],
  [/^#\/hosts\/?$/, renderHosts, "hosts"],
];

let cleanup = null;
/** The route to return to after signing in. */
let afterSignIn = "#/clusters";

function route() {
  const hash = location.hash || "#/clusters";
  if (!hash.startsWith("#/")) return; // an in-page anchor such as the skip link
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
    cleanup = null;
  }
  const main = document.getElementById("main");
  main.replaceChildren();
  updateSession();

  if (!session.token) {
    if (hash !== "#/signin") afterSignIn = hash;
    cleanup = renderSignIn(main, () => {
      location.hash = afterSignIn === "#/signin" ? "#/clusters" : afterSignIn;
      if (location.hash === afterSignIn) route();
    });
    focusHeading(main);
    return;
  }
  if (hash === "#/signin") {
    location.replace("#/clusters");
    return;
  }
  const found = ROUTES.map(([re, render, nav]) => [hash.match(re), render, nav]).find(([m]) => m);
  if (!found) {
    location.replace("#/clusters");
    return;
  }
  const [match, render, nav] = found;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  cleanup = render(main, ...match.slice(1).map(decodeURIComponent)) || null;
  focusHeading(main);
}

/** Moves focus to the new page's heading so keyboard and screen-reader users start there. */
function focusHeading(main) {
  const heading = main.querySelector("h1");
  if (heading) heading.focus({ preventScroll: true });
}

function updateSession() {
  const signedIn = Boolean(session.token);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("session").hidden = !signedIn;
  const claims = session.claims;
  document.getElementById("session-who").textContent = claims
    ? `${claims.sub || "signed in"} · tenant ${claims.tenant} · ${claims.role}`
    : "signed in";
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  afterSignIn = "#/clusters";
  announce("Signed out");
  location.hash = "#/signin";
  route();
});

window.addEventListener("ferry:unauthenticated", () => {
  session.signOut();
  afterSignIn = location.hash;
  location.hash = "#/signin";
  route();
});

window.addEventListener("hashchange", route);
// The skip link moves focus without touching the route.
document.querySelector("[data-skip]").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});
route();
