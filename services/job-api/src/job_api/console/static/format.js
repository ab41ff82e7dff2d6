// How the console shows dates, statuses, counts and what a role may do.

import { h } from "./dom.js";

// The year only when it is not this one: the tables stay narrow, the title has the full ISO date.
const TIME = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
const thisYear = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", ...TIME });
const otherYear = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", ...TIME });
const number = new Intl.NumberFormat();

export function when(iso) {
  if (!iso) return h("span", { class: "muted", "aria-label": "not yet" }, "—");
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", {}, String(iso));
  const format = d.getFullYear() === new Date().getFullYear() ? thisYear : otherYear;
  return h("time", { datetime: d.toISOString(), title: d.toISOString() }, format.format(d));
}

export function duration(startIso, endIso) {
  if (!startIso) return "";
  const ms = (endIso ? new Date(endIso) : new Date()) - new Date(startIso);
  if (!(ms >= 0)) return "";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function count(n) {
  return n === undefined || n === null ? "—" : number.format(n);
}

export const JOB_STATUSES = ["QUEUED", "RUNNING", "THRESHOLD", "VALIDATED", "COMPLETED", "FAILED", "CANCELED"];
export const ACTIVE = new Set(["QUEUED", "RUNNING"]);

const LABELS = {
  QUEUED: "Queued", RUNNING: "Running", COMPLETED: "Completed", FAILED: "Failed",
  THRESHOLD: "Threshold", VALIDATED: "Validated", CANCELED: "Canceled", PENDING: "Pending",
};

export function statusBadge(status, testid) {
  const s = String(status ?? "UNKNOWN").toUpperCase();
  return h("span", { class: `badge badge--${s.toLowerCase()}`, testid, dataset: { status: s } }, LABELS[s] ?? s);
}

export function can(me, permission) {
  return Boolean(me?.permissions?.includes(permission));
}

// Whether the server offers `action` on `job` to this caller now: the API answers each job
// with its allowed_actions (the role's permissions and the status rules), and the console
// keeps no copy of those rules.
export function offers(job, action) {
  return Boolean(job?.allowed_actions?.includes(action));
}

export function definitionLabel(job) {
  return job.definition_name || job.definition?.name || job.definition_id || "—";
}

export function shortId(id) {
  return String(id ?? "").slice(0, 8);
}

// A dry run is planned and decided only: marked wherever a job appears, so nobody takes its
// counts for changes made.
export function dryRunTag(job) {
  if (!job?.dry_run) return null;
  return h("span", { class: "tag tag--dry-run", testid: "dry-run-tag", title: "Dry run: planned only, nothing is or will be written" }, "Dry run");
}
