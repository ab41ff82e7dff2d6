// Who was told about a job, on its page: each delivery (recipient, webhook or email, the event)
// with every attempt and its outcome (GET /jobs/{id}/notifications). The API never answers a
// secret, so there is none here to hide.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { when } from "../format.js";

const KIND_LABELS = { threshold: "Stopped at a threshold", failed: "Failed", completed: "Completed" };
const STATUS_LABELS = { sent: "Delivered", failed: "Failed", sending: "Sending" };

function deliveryBadge(status) {
  return h("span", { class: `badge badge--delivery-${status}`, testid: "notification-status", dataset: { status } }, STATUS_LABELS[status] ?? status);
}

function attemptList(attempts) {
  if (!attempts?.length) return h("span", { class: "muted" }, "none yet");
  return h("ol", { class: "attempts", testid: "notification-attempts" }, attempts.map((a, i) =>
    h("li", { testid: "notification-attempt", dataset: { ok: String(a.ok) } },
      h("span", { class: `attempt-mark attempt-mark--${a.ok ? "ok" : "failed"}` }, a.ok ? "✓" : "✗"),
      h("span", { class: "visually-hidden" }, a.ok ? "succeeded" : "failed"),
      ` ${i + 1}. `, when(a.at), " ", h("span", { class: a.ok ? "muted" : "error-text", testid: "attempt-detail" }, a.detail))));
}

function deliveryRow(n) {
  return h("tr", { testid: "notification-row", dataset: { channel: n.channel, status: n.status, recipient: n.recipient } },
    h("td", {}, h("span", { class: "cell-title" }, KIND_LABELS[n.kind] ?? n.kind), h("div", { class: "cell-sub" }, when(n.created_at))),
    h("td", {}, h("strong", { class: "recipient-name", testid: "notification-recipient" }, n.recipient)),
    h("td", {}, h("span", { class: "origin", testid: "notification-channel" }, n.channel === "email" ? "email" : "webhook"),
      h("div", { class: "cell-sub", testid: "notification-address" }, h("code", {}, n.address))),
    h("td", {}, deliveryBadge(n.status), n.finished_at ? h("div", { class: "cell-sub" }, when(n.finished_at)) : null),
    h("td", {}, attemptList(n.attempts)),
  );
}

// The section, and a function that reads the deliveries again; the job page calls it when the
// job's status changes, since a stop is what sends them.
export function notificationsSection(jobId) {
  const body = h("tbody", {}, h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Loading the notifications…")));
  const summary = h("span", { class: "muted", testid: "notifications-summary" });
  let alive = true;
  let inflight = null;

  async function load() {
    inflight?.abort();
    inflight = new AbortController();
    try {
      const data = await api.notifications(jobId, inflight.signal);
      if (!alive) return;
      const items = data.items ?? [];
      const failed = items.filter((n) => n.status === "failed").length;
      summary.textContent = items.length ? `${items.length} deliver${items.length === 1 ? "y" : "ies"}${failed ? `, ${failed} failed` : ""}` : "";
      replace(body, items.length ? items.map(deliveryRow)
        : h("tr", {}, h("td", { colspan: 5, class: "empty", testid: "notifications-empty" },
          "Nobody has been told about this job: it has not stopped, or its definition names no recipient for this stop.")));
    } catch (err) {
      if (err.name === "AbortError" || !alive) return;
      replace(body, h("tr", {}, h("td", { colspan: 5, class: "empty" }, `The notifications could not be loaded: ${err.message}`)));
    }
  }

  const element = h("section", { class: "card card--flush", testid: "notifications", "aria-labelledby": "notifications-title" },
    h("div", { class: "card__head" }, h("h2", { id: "notifications-title" }, "Notifications"),
      h("div", { class: "head-actions" }, summary,
        h("button", { type: "button", class: "btn btn--small btn--ghost", testid: "notifications-refresh", onclick: load }, "Refresh"))),
    h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "notifications-table" },
      h("caption", { class: "visually-hidden" }, "Notifications sent about this job, with every attempt"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "Recipient"), h("th", { scope: "col" }, "Channel"),
        h("th", { scope: "col" }, "Outcome"), h("th", { scope: "col" }, "Attempts"))),
      body)),
  );

  return { element, load, stop: () => { alive = false; inflight?.abort(); } };
}
