// The REST API as the console calls it: session cookie, CSRF header, readable errors.

const API = "/api/v1";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

// FastAPI says `detail` (a string, or a list of field errors); other handlers say `message`.
export function errorMessage(status, body) {
  if (body && typeof body === "object") {
    const d = body.detail ?? body.message ?? body.error;
    if (typeof d === "string" && d) return d;
    if (d && typeof d === "object" && !Array.isArray(d) && typeof d.message === "string") return d.message;
    if (Array.isArray(d) && d.length) {
      return d.map((e) => {
        const where = Array.isArray(e.loc) ? e.loc.filter((p) => p !== "body" && p !== "query").join(".") : "";
        return where ? `${where}: ${e.msg}` : String(e.msg ?? e);
      }).join("; ");
    }
  }
  if (typeof body === "string" && body.trim()) return body.trim().slice(0, 300);
  const plain = {
    401: "You are not signed in, or your session has expired.",
    403: "Your role does not allow this.",
    404: "Not found: it may have been deleted.",
    409: "The job's current state does not allow this.",
    429: "Too many requests; wait a moment and retry.",
  };
  return plain[status] ?? `The server answered ${status}.`;
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export async function request(method, path, { query, json, form, signal } = {}) {
  const url = new URL(path.startsWith("/") ? path : `${API}/${path}`, location.origin);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  }
  if (UNSAFE.has(method)) {
    const csrf = cookie("pj_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "same-origin", cache: "no-store", signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The server cannot be reached. Check that job-api is running, then retry.", null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, errorMessage(response.status, data), data);
    if (response.status === 401 && !path.startsWith("/console/session")) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const api = {
  me: () => request("GET", "me"),
  signIn: (apiKey) => request("POST", "/console/session", { json: { api_key: apiKey } }),
  signOut: () => request("DELETE", "/console/session"),
  listJobs: (query, signal) => request("GET", "jobs", { query, signal }),
  job: (id, signal) => request("GET", `jobs/${encodeURIComponent(id)}`, { signal }),
  changes: (id, index, query, signal) =>
    request("GET", `jobs/${encodeURIComponent(id)}/sequences/${index}/changes`, { query, signal }),
  definitions: (page = 1, pageSize = 100) => request("GET", "job-definitions", { query: { page, page_size: pageSize } }),
  definition: (id, signal) => request("GET", `job-definitions/${encodeURIComponent(id)}`, { signal }),
  createDefinition: (body) => request("POST", "job-definitions", { json: body }),
  replaceDefinition: (id, body, expectedVersion) =>
    request("PUT", `job-definitions/${encodeURIComponent(id)}`, { json: body, query: { expected_version: expectedVersion } }),
  submit: (body) => request("POST", "jobs", { json: body }),
  // Who was told about a job (webhook, email) and every attempt; never a secret.
  notifications: (id, signal) => request("GET", `jobs/${encodeURIComponent(id)}/notifications`, { signal }),
  // A definition's next firing and its last firings, started or skipped.
  firings: (id, signal) => request("GET", `job-definitions/${encodeURIComponent(id)}/firings`, { signal }),
  audit: (query, signal) => request("GET", "audit", { query, signal }),
  apiKeys: () => request("GET", "api-keys"),
  createApiKey: (name, role) => request("POST", "api-keys", { json: { name, role } }),
  deleteApiKey: (id) => request("DELETE", `api-keys/${encodeURIComponent(id)}`),
  // Server-sent events of one job instance, for EventSource (same origin, the session cookie).
  // null: a page of the list (its query parameters added by the caller).
  jobEventsUrl: (id) => (id === null ? `${API}/jobs/events` : `${API}/jobs/${encodeURIComponent(id)}/events`),
  validate: (id, planId) =>
    request("POST", `jobs/${encodeURIComponent(id)}/threshold/validate`, planId ? { json: { plan_id: planId } } : {}),
  cancel: (id) => request("POST", `jobs/${encodeURIComponent(id)}/threshold/cancel`),
  restart: (id) => request("POST", `jobs/${encodeURIComponent(id)}/restart`),
  archive: (id) => request("POST", `jobs/${encodeURIComponent(id)}/archive`),
  unarchive: (id) => request("POST", `jobs/${encodeURIComponent(id)}/unarchive`),
  remove: (id) => request("DELETE", `jobs/${encodeURIComponent(id)}`),
  revert: (id, index, body) => request("POST", `jobs/${encodeURIComponent(id)}/sequences/${index}/revert`, { json: body }),
  conflicts: (id, index, query) => request("GET", `jobs/${encodeURIComponent(id)}/sequences/${index}/conflicts`, { query }),
};
