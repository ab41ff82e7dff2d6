// The console's entry point: who is signed in, and which view the address shows.

import { api, ApiError, whenUnauthorized } from "./api.js";
import { clearFlash, flash, replace } from "./dom.js";
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
