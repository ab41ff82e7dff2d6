// The console's entry point: who is signed in, and which view the address shows.

import { api, ApiError, whenUnauthorized } from "./api.js";
import { clearFlash, flash, replace } from "./dom.js";
import { mountApiKeys } from "./views/api-keys.js";
import { mountAudit } from "./views/audit.js";
import { mountDefinition } from "./views/definition.js";
import { mountDefinitionForm } from "./views/definition-form.js";
import { mountDefinitions } from "./views/definitions.js";
import { mountJobDetail } from "./views/job.js";
import { mountJobs } from "./views/jobs.js";
import { mountSignIn } from "./views/signin.js";

const main = document.getElementById("main");
const state = { me: null, unmount: null, returnTo: null, shown: null };

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const [path, query = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

export function navigate(path, params) {
  const q = params ? new URLSearchParams(params).toString() : "";
  const target = `#${path}${q ? `?${q}` : ""}`;
  if (location.hash === target) render();
  else location.hash = target;
}

function showSession() {
  const signedIn = Boolean(state.me);
  document.querySelector("[data-testid=main-nav]").hidden = !signedIn;
  document.querySelector("[data-testid=session]").hidden = !signedIn;
  if (signedIn) {
    document.querySelector("[data-testid=session-name]").textContent = state.me.name;
    const role = document.querySelector("[data-testid=session-role]");
    role.textContent = state.me.role;
    role.dataset.role = state.me.role;
  }
  // A page the role cannot use is not offered; /me says what the role may do (the server's table).
  for (const link of document.querySelectorAll("[data-permission]")) {
    link.hidden = !signedIn || !state.me.permissions?.includes(link.dataset.permission);
  }
}

function markNav(section) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function render() {
  state.unmount?.();
  state.unmount = null;
  const { parts, params } = parseRoute();
  const ctx = { me: state.me, navigate, params };
  if (!state.me || parts[0] === "sign-in") {
    if (state.me && parts[0] === "sign-in") return navigate("/jobs");
    markNav(null);
    document.title = "Sign in · Provisioning Jobs";
    state.unmount = mountSignIn(main, { onSignedIn });
    return;
  }
  // A screen reader hears the new view, and Tab starts from it, as after a page load.
  const path = parts.join("/");
  if (state.shown !== null && state.shown !== path) main.focus({ preventScroll: true });
  state.shown = path;
  if (parts[0] === "jobs" && parts[1]) {
    markNav("jobs");
    state.unmount = mountJobDetail(main, { ...ctx, jobId: parts[1] });
  } else if (parts[0] === "jobs" || parts.length === 0) {
    markNav("jobs");
    document.title = "Jobs · Provisioning Jobs";
    state.unmount = mountJobs(main, ctx);
  } else if (parts[0] === "definitions" && parts[1] === "new") {
    markNav("definitions");
    document.title = "New definition · Provisioning Jobs";
    state.unmount = mountDefinitionForm(main, { ...ctx, definitionId: null });
  } else if (parts[0] === "definitions" && parts[1] && parts[2] === "edit") {
    markNav("definitions");
    document.title = `Edit ${parts[1]} · Provisioning Jobs`;
    state.unmount = mountDefinitionForm(main, { ...ctx, definitionId: parts[1] });
  } else if (parts[0] === "definitions" && parts[1]) {
    markNav("definitions");
    document.title = `${parts[1]} · Provisioning Jobs`;
    state.unmount = mountDefinition(main, { ...ctx, definitionId: parts[1] });
  } else if (parts[0] === "definitions") {
    markNav("definitions");
    document.title = "Definitions · Provisioning Jobs";
    state.unmount = mountDefinitions(main, ctx);
  } else if (parts[0] === "audit") {
    markNav("audit");
    document.title = "Audit · Provisioning Jobs";
    state.unmount = mountAudit(main, ctx);
  } else if (parts[0] === "api-keys") {
    markNav("api-keys");
    document.title = "API keys · Provisioning Jobs";
    state.unmount = mountApiKeys(main, ctx);
  } else {
    replace(main, notFound());
  }
}

function notFound() {
  const p = document.createElement("p");
  p.className = "card";
  p.textContent = "This page does not exist. ";
  const a = document.createElement("a");
  a.href = "#/jobs";
  a.textContent = "Go to the jobs.";
  p.append(a);
  return p;
}

async function onSignedIn(me) {
  state.me = me;
  showSession();
  clearFlash();
  const back = state.returnTo;
  state.returnTo = null;
  const target = back && !back.startsWith("#/sign-in") ? back : "#/jobs";
  if (location.hash === target) render();
  else location.hash = target;
}

whenUnauthorized(() => {
  if (!state.me) return;
  state.me = null;
  state.returnTo = location.hash;
  showSession();
  clearFlash();
  flash("Your session has ended. Sign in again to continue.");
  render();
});

document.querySelector("[data-testid=sign-out]").addEventListener("click", async () => {
  try {
    await api.signOut();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) flash(err.message);
  }
  state.me = null;
  showSession();
  clearFlash();
  flash("You are signed out.", "notice");
  location.hash = "#/sign-in";
  render();
});

window.addEventListener("hashchange", render);

async function boot() {
  try {
    state.me = await api.me();
  } catch (err) {
    state.me = null;
    if (!(err instanceof ApiError) || err.status !== 401) flash(err.message);
    if (!location.hash.startsWith("#/sign-in")) state.returnTo = location.hash || null;
  }
  showSession();
  render();
}

boot();
