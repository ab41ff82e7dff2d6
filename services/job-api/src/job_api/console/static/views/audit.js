// The audit trail (admins): every operator action, filtered by job, actor, action and date, paged.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { shortId, when } from "../format.js";
import { positiveInt, renderPager } from "../paging.js";

const PAGE_SIZES = [10, 25, 50, 100];
const FILTERS = ["job_id", "actor", "action", "at_from", "at_to"];
// What job-api audits; the field takes any other name too (a newer job-api's actions).
const KNOWN_ACTIONS = [
  "submit", "validate", "cancel", "restart", "archive", "unarchive", "delete",
  "definition.create", "definition.replace", "definition.delete",
  "api_key.create", "api_key.delete", "console.sign_in",
];

export function mountAudit(main, { navigate, params }) {
  let alive = true;
  const query = {
    page: positiveInt(params.get("page"), 1),
    page_size: PAGE_SIZES.includes(Number(params.get("page_size"))) ? Number(params.get("page_size")) : 25,
  };
  for (const f of FILTERS) query[f] = params.get(f) ?? "";

  const go = (changes) => {
    const next = { ...query, ...changes };
    const out = {};
    if (next.page !== 1) out.page = next.page;
    if (next.page_size !== 25) out.page_size = next.page_size;
    for (const f of FILTERS) if (next[f]) out[f] = next[f];
    navigate("/audit", out);
  };

  const inputs = {
    job_id: h("input", { type: "text", id: "audit-job", testid: "audit-job", value: query.job_id, placeholder: "job id", spellcheck: "false" }),
    actor: h("input", { type: "text", id: "audit-actor", testid: "audit-actor", value: query.actor, placeholder: "key name", spellcheck: "false" }),
    action: h("input", { type: "text", id: "audit-action", testid: "audit-action", value: query.action, list: "audit-actions", spellcheck: "false" }),
    at_from: h("input", { type: "date", id: "audit-from", testid: "audit-from", value: query.at_from.slice(0, 10) }),
    at_to: h("input", { type: "date", id: "audit-to", testid: "audit-to", value: query.at_to.slice(0, 10) }),
  };
  const pageSize = h("select", { id: "audit-page-size", testid: "page-size", onchange: () => go({ page_size: Number(pageSize.value), page: 1 }) },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === query.page_size }, String(n))));
  const toolbar = h("form", { class: "toolbar", role: "search", "aria-label": "Filter the audit trail", testid: "audit-filters" },
    h("div", { class: "field" }, h("label", { for: "audit-job" }, "Job"), inputs.job_id),
    h("div", { class: "field" }, h("label", { for: "audit-actor" }, "Actor"), inputs.actor),
    h("div", { class: "field" }, h("label", { for: "audit-action" }, "Action"), inputs.action,
      h("datalist", { id: "audit-actions" }, KNOWN_ACTIONS.map((a) => h("option", { value: a })))),
    h("div", { class: "field" }, h("label", { for: "audit-from" }, "From"), inputs.at_from),
    h("div", { class: "field" }, h("label", { for: "audit-to" }, "To"), inputs.at_to),
    h("button", { type: "submit", class: "btn btn--primary", testid: "audit-apply" }, "Filter"),
    h("button", { type: "button", class: "btn btn--ghost", testid: "audit-clear", onclick: () => go(Object.fromEntries([...FILTERS.map((f) => [f, ""]), ["page", 1]])) }, "Clear"),
    h("div", { class: "toolbar__spacer" }),
    h("div", { class: "field" }, h("label", { for: "audit-page-size" }, "Per page"), pageSize),
  );
  toolbar.addEventListener("submit", (event) => {
    event.preventDefault();
    const changes = { page: 1 };
    for (const f of ["job_id", "actor", "action"]) changes[f] = inputs[f].value.trim();
    // A day in the browser's time zone, from its first to its last millisecond, sent in UTC.
    changes.at_from = inputs.at_from.value ? new Date(`${inputs.at_from.value}T00:00:00`).toISOString() : "";
    changes.at_to = inputs.at_to.value ? new Date(`${inputs.at_to.value}T23:59:59.999`).toISOString() : "";
    go(changes);
  });
  for (const f of ["at_from", "at_to"]) {
    if (query[f]) {
      const d = new Date(query[f]);
      if (!Number.isNaN(d.getTime())) inputs[f].value = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
    }
  }

  const tbody = h("tbody", { testid: "audit-tbody" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of the audit trail", testid: "pager" });
  replace(main,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Audit"),
      h("p", { class: "muted" }, "Every action taken through the API or the console, newest first."))),
    h("section", { class: "card card--flush" }, toolbar,
      h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "audit-table" },
        h("caption", { class: "visually-hidden" }, "Audit entries"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Actor"), h("th", { scope: "col" }, "Action"),
          h("th", { scope: "col" }, "On"), h("th", { scope: "col" }, "Outcome"))),
        tbody)),
      pager),
  );

  function subject(e) {
    if (e.job_id) return h("a", { href: `#/jobs/${encodeURIComponent(e.job_id)}`, title: e.job_id }, "job ", h("code", {}, shortId(e.job_id)));
    if (e.target) return h("span", {}, e.target);
    return h("span", { class: "muted" }, "—");
  }

  async function load() {
    try {
      const data = await api.audit(query);
      if (!alive) return;
      if (data.pages && query.page > data.pages) return go({ page: data.pages });
      const items = data.items ?? [];
      replace(tbody, items.length ? items.map((e) => h("tr", { testid: "audit-row", dataset: { action: e.action, actor: e.actor, outcome: e.outcome } },
        h("td", {}, when(e.at)),
        h("td", {}, e.actor, e.role ? h("div", { class: "cell-sub" }, e.role) : null),
        h("td", {}, h("code", {}, e.action)),
        h("td", {}, subject(e)),
        h("td", {}, h("span", { class: `tag outcome--${e.outcome}` }, `${e.outcome} · ${e.status_code}`),
          e.reason ? h("div", { class: "cell-sub" }, e.reason) : null),
      )) : h("tr", {}, h("td", { colspan: 5, class: "empty", testid: "audit-empty" }, "No audit entry matches these filters.")));
      renderPager(pager, data, { noun: "entries", go: (p) => go({ page: p }) });
    } catch (err) {
      if (!alive) return;
      replace(tbody, h("tr", {}, h("td", { colspan: 5, class: "empty", testid: "audit-error" }, `The audit trail could not be loaded: ${err.message}`)));
    }
  }

  load();
  return () => { alive = false; };
}
