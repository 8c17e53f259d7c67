// The REST API client: every call carries the session's bearer token; every error becomes an
// ApiError holding the API's error body ({code, message, reason, fieldViolations}).

const TOKEN_KEY = "ferry.console.token";
/** How long one API call may take before the console gives up on it. */
const CALL_TIMEOUT_MS = 15000;

/** The signed-in session: the token lives in sessionStorage (this tab, until it closes). */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
  /** The token's claims (tenant, role, sub, exp), read without verifying: the server verifies. */
  get claims() {
    return decodeClaims(this.token);
  },
  /** Whether the role may change running clusters (operator, admin and service-operator). */
  get canUpdate() {
    return ["admin", "operator", "service-operator"].includes(this.claims?.role);
  },
  /**
   * Whether the role may create and delete clusters and list hosts (the API's permission table:
   * admin, and service-operator, an admin of its tenant who also sees every tenant's nodes).
   */
  get canChange() {
    return ["admin", "service-operator"].includes(this.claims?.role);
  },
};

/** The claims of a JWT, or null if it is not one. */
export function decodeClaims(token) {
  const parts = (token || "").split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const claims = JSON.parse(json);
    return typeof claims === "object" && claims ? claims : null;
  } catch {
    return null;
  }
}

/** A refused or failed call. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || "";
    this.reason = body.reason || "";
    this.fieldViolations = Array.isArray(body.fieldViolations) ? body.fieldViolations : [];
  }
}

/**
 * Calls the API: `method` on `path` (under /v1) with an optional JSON `body`, `token` (default:
 * the session's). Resolves to the response JSON; rejects with an ApiError. A 401 signs the
 * session out and tells the app (the "ferry:unauthenticated" event).
 */
export async function call(method, path, body, token = session.token) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), CALL_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
      cache: "no-store",
    });
  } catch (err) {
    const why = err.name === "AbortError" ? `no answer within ${CALL_TIMEOUT_MS / 1000} s` : err.message;
    throw new ApiError(0, { code: "UNAVAILABLE", message: `The control plane could not be reached (${why}).` });
  } finally {
    clearTimeout(timer);
  }
  let json = {};
  const text = await response.text();
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = { message: text };
    }
  }
  if (!response.ok) {
    const err = new ApiError(response.status, json);
    if (response.status === 401 && token === session.token) {
      window.dispatchEvent(new CustomEvent("ferry:unauthenticated", { detail: err }));
    }
    throw err;
  }
  return json;
}

/** Every page of a list call: `key` is the list's field (clusters, hosts, ...). */
export async function listAll(path, key, maxPages = 50) {
  const items = [];
  let token = "";
  for (let page = 0; page < maxPages; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const url = token ? `${path}${sep}pageToken=${encodeURIComponent(token)}` : path;
    const response = await call("GET", url);
    items.push(...(response[key] || []));
    token = response.nextPageToken || "";
    if (!token) break;
  }
  return items;
}

export const api = {
  listClusters: (namePrefix = "") =>
    listAll(`/v1/clusters${namePrefix ? `?namePrefix=${encodeURIComponent(namePrefix)}` : ""}`, "clusters"),
  getCluster: (id) => call("GET", `/v1/clusters/${encodeURIComponent(id)}`),
  createCluster: (request) => call("POST", "/v1/clusters", request),
  deleteCluster: (id, currentVersion) =>
    call("DELETE", `/v1/clusters/${encodeURIComponent(id)}?currentVersion=${encodeURIComponent(currentVersion)}`),
  updateBrokerCount: (id, currentVersion, brokerCount) =>
    call("PUT", `/v1/clusters/${encodeURIComponent(id)}/broker-count`, { currentVersion, brokerCount }),
  bootstrapBrokers: (id) => call("GET", `/v1/clusters/${encodeURIComponent(id)}/bootstrap-brokers`),
  listOperations: (id) => listAll(`/v1/clusters/${encodeURIComponent(id)}/operations`, "operations", 5),
  getOperation: (id) => call("GET", `/v1/operations/${encodeURIComponent(id)}`),
  listHosts: () => listAll("/v1/hosts", "hosts"),
  /** What the console needs that the API does not say: the Kafka versions offered. */
  consoleConfig: () => call("GET", "/console/config.json", undefined, null),
};
