// A definition's schedule on its page: the rule, the next firing, and the recent firings with
// the job each started or why it was skipped (GET /job-definitions/{id}/firings).

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { shortId, when } from "../format.js";

const FIRING_LABELS = { requested: "Job requested", skipped: "Skipped", claimed: "Firing" };

export function scheduleText(schedule) {
  if (!schedule) return "";
  if (schedule.interval_minutes) {
    const m = schedule.interval_minutes;
    const every = m % 60 === 0 ? `${m / 60} hour${m === 60 ? "" : "s"}` : `${m} minute${m === 1 ? "" : "s"}`;
    return `every ${every}`;
  }
  return `cron ${schedule.cron} (${schedule.timezone ?? "UTC"})`;
}

// "in 12 min" beside the next firing's date: what an operator wants to know at a glance.
function fromNow(iso) {
  const minutes = Math.round((new Date(iso) - Date.now()) / 60000);
  if (!(minutes >= 0)) return "";
  if (minutes < 1) return "in less than a minute";
  if (minutes < 90) return `in ${minutes} min`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `in ${hours} h` : `in ${Math.round(hours / 24)} days`;
}

function firingBadge(status) {
  return h("span", { class: `badge badge--firing-${status}`, testid: "firing-status", dataset: { status } }, FIRING_LABELS[status] ?? status);
}

function fact(label, value, testid) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", { testid }, value ?? h("span", { class: "muted" }, "—")));
}

function firingRow(f) {
  const outcome = f.status === "skipped"
    ? h("span", { testid: "firing-reason" }, f.reason ?? "skipped")
    : f.job_id
      ? h("a", { href: `#/jobs/${encodeURIComponent(f.job_id)}`, testid: "firing-job" }, "job ", h("code", { title: f.job_id }, shortId(f.job_id)))
      : h("span", { class: "muted" }, "being requested…");
  return h("tr", { testid: "firing-row", dataset: { status: f.status, firingId: f.id } },
    h("td", {}, when(f.at)),
    h("td", {}, firingBadge(f.status)),
    h("td", {}, outcome),
    h("td", { class: "num" }, f.missed ? h("span", { title: "Earlier firings missed while no scheduler ran: counted here, not run" }, String(f.missed)) : "0"),
    h("td", {}, when(f.settled_at)),
  );
}

// The section, and a function that (re)reads the firings; the page calls it once it knows
// the definition.
export function scheduleSection(definitionId) {
  const section = h("section", { class: "card card--flush", testid: "schedule", "aria-labelledby": "schedule-title" });
  let alive = true;

  async function load(definition) {
    const schedule = definition.schedule;
    const headline = h("div", { class: "card__head" }, h("h2", { id: "schedule-title" }, "Schedule"));
    if (!schedule) {
      replace(section, headline, h("p", { class: "card__pad muted", testid: "schedule-none" },
        "No schedule: this definition runs only when a job is requested (Run now, the API or Kafka)."));
    }
    let data;
    try {
      data = await api.firings(definitionId);
    } catch (err) {
      if (alive) replace(section, headline, h("p", { class: "card__pad error-text" }, `The firings could not be loaded: ${err.message}`));
      return;
    }
    if (!alive) return;
    const items = data.items ?? [];
    // A definition whose schedule was removed keeps its past firings: still shown.
    if (!schedule && !items.length) return;
    replace(section, headline,
      schedule ? h("dl", { class: "facts card__pad schedule-facts" },
        fact("Runs", h("code", {}, scheduleText(schedule)), "schedule-rule"),
        fact("Time zone", schedule.cron ? schedule.timezone ?? "UTC" : "UTC (intervals count from 1970-01-01T00:00Z)", "schedule-timezone"),
        fact("Next firing", data.next_at ? [when(data.next_at), h("div", { class: "cell-sub" }, fromNow(data.next_at))] : null, "schedule-next"),
        fact("While a job runs", "a firing is skipped while a job of this definition is unfinished (queued, running, at a threshold or validated)"),
      ) : h("p", { class: "card__pad muted", testid: "schedule-none" }, "No schedule now; its earlier firings:"),
      h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "firings-table" },
        h("caption", { class: "visually-hidden" }, "The schedule's recent firings, newest first"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Firing"), h("th", { scope: "col" }, "Outcome"), h("th", { scope: "col" }, "Job, or why skipped"),
          h("th", { scope: "col", class: "num" }, h("abbr", { title: "Firings missed while no scheduler ran, counted on this one and not run" }, "Missed")),
          h("th", { scope: "col" }, "Settled"))),
        h("tbody", {}, items.length ? items.map(firingRow)
          : h("tr", {}, h("td", { colspan: 5, class: "empty", testid: "firings-empty" }, "It has not fired yet: job-api-scheduler runs its first firing when it comes."))))),
    );
  }

  return { element: section, load, stop: () => { alive = false; } };
}
