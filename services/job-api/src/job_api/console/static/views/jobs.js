// The job instance tracking page: filters, a page of jobs, paging, and the row actions a role may use.

import { api } from "../api.js";
import { confirmDialog, flash, h, replace } from "../dom.js";
import { can, count, definitionLabel, dryRunTag, JOB_STATUSES, offers, shortId, statusBadge, when } from "../format.js";
import { revertMark } from "./revert.js";

const PAGE_SIZES = [10, 25, 50, 100];
// How long to wait before reading the page again when its event stream was refused.
const RETRY_MS = 3000;
// The control a keyboard user moved with: each page is a new view, so focus is put back on it.
let focusAfterLoad = null;

function readQuery(params) {
  const pageSize = Number(params.get("page_size"));
  const page = Number(params.get("page"));
  return {
    page: Number.isInteger(page) && page > 0 ? page : 1,
    page_size: PAGE_SIZES.includes(pageSize) ? pageSize : 10,
    status: JOB_STATUSES.includes(params.get("status")) ? params.get("status") : "",
    definition_id: params.get("definition_id") ?? "",
    archived: params.get("archived") === "any" ? "any" : "false",
  };
}

export function mountJobs(main, { me, navigate, params }) {
  const query = readQuery(params);
  let timer = null;
  let stream = null;
  let inflight = null;
  let alive = true;
  let lastPage = null;

  const go = (changes) => {
    focusAfterLoad = document.activeElement?.dataset?.testid ?? null;
    const next = { ...query, ...changes };
    const out = {};
    if (next.page !== 1) out.page = next.page;
    if (next.page_size !== 10) out.page_size = next.page_size;
    if (next.status) out.status = next.status;
    if (next.definition_id) out.definition_id = next.definition_id;
    if (next.archived === "any") out.archived = "any";
    navigate("/jobs", out);
  };

  // ---- toolbar ----
  const statusSelect = h("select", { id: "filter-status", testid: "status-filter", onchange: () => go({ status: statusSelect.value, page: 1 }) },
    h("option", { value: "" }, "All statuses"),
    JOB_STATUSES.map((s) => h("option", { value: s, selected: s === query.status }, s.charAt(0) + s.slice(1).toLowerCase())),
  );
  const definitionSelect = h("select", { id: "filter-definition", testid: "definition-filter", onchange: () => go({ definition_id: definitionSelect.value, page: 1 }) },
    h("option", { value: "" }, "All definitions"),
    query.definition_id ? h("option", { value: query.definition_id, selected: true }, query.definition_id) : null,
  );
  const archivedToggle = h("input", {
    id: "filter-archived", type: "checkbox", testid: "show-archived", checked: query.archived === "any",
    onchange: () => go({ archived: archivedToggle.checked ? "any" : "false", page: 1 }),
  });
  const pageSize = h("select", { id: "page-size", testid: "page-size", onchange: () => go({ page_size: Number(pageSize.value), page: 1 }) },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === query.page_size }, String(n))),
  );
  const refresh = h("button", { type: "button", class: "btn btn--ghost", testid: "refresh", onclick: () => load() }, "Refresh");

  const toolbar = h("form", { class: "toolbar", role: "search", "aria-label": "Filter job instances", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
    h("div", { class: "field" }, h("label", { for: "filter-definition" }, "Definition"), definitionSelect),
    h("div", { class: "field field--check" }, archivedToggle, h("label", { for: "filter-archived" }, "Show archived")),
    h("div", { class: "toolbar__spacer" }),
    h("div", { class: "field" }, h("label", { for: "page-size" }, "Per page"), pageSize),
    refresh,
  );

  // ---- table ----
  const tbody = h("tbody", { testid: "jobs-tbody" });
  const caption = h("caption", { class: "visually-hidden" }, "Job instances");
  const table = h("table", { class: "table", testid: "jobs-table", "aria-busy": "true" },
    caption,
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Definition"),
      h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Origin"),
      h("th", { scope: "col" }, "Created"),
      h("th", { scope: "col" }, "Started"),
      h("th", { scope: "col" }, "Ended"),
      h("th", { scope: "col", class: "col-actions" }, "Actions"),
    )),
    tbody,
  );
  const summary = h("p", { class: "muted summary", testid: "jobs-total", "aria-live": "polite" }, "");
  const pager = h("nav", { class: "pager", "aria-label": "Pages of job instances", testid: "pager" });

  replace(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Jobs"), summary),
    ),
    h("section", { class: "card card--flush" }, toolbar, h("div", { class: "table-wrap" }, table), pager),
  );

  function button(label, testid, cls, onclick, { disabled = false, reason = "" } = {}) {
    return h("button", {
      type: "button", class: `btn btn--small ${cls}`, testid, onclick, disabled,
      title: disabled ? reason : null, "aria-disabled": disabled ? "true" : null,
    }, label);
  }

  function rowActions(job) {
    const label = `${definitionLabel(job)} ${shortId(job.id)}`;
    const cells = [
      h("a", { class: "btn btn--small btn--ghost", href: `#/jobs/${encodeURIComponent(job.id)}`, testid: "btn-view", "aria-label": `View job ${label}` }, "View"),
    ];
    if (can(me, "archive")) {
      if (job.archived) {
        cells.push(button("Unarchive", "btn-unarchive", "btn--ghost", () => act(job, "unarchive"), {
          disabled: !offers(job, "unarchive"), reason: "Only a finished job can be unarchived.",
        }));
      } else {
        const ok = offers(job, "archive");
        cells.push(button("Archive", "btn-archive", "btn--ghost", () => act(job, "archive"), {
          disabled: !ok, reason: "Only finished jobs (completed, failed or canceled) can be archived.",
        }));
      }
    }
    if (can(me, "delete")) {
      const ok = offers(job, "delete");
      cells.push(button("Delete", "btn-delete", "btn--danger-ghost", () => act(job, "delete"), {
        disabled: !ok, reason: "A job that is queued, running or waiting for a decision cannot be deleted.",
      }));
    }
    return h("div", { class: "row-actions" }, cells);
  }

  async function act(job, what) {
    if (what === "delete") {
      const ok = await confirmDialog({
        title: "Delete this job instance?",
        body: [
          h("p", {}, "The job ", h("strong", {}, definitionLabel(job)), " (", h("code", {}, job.id), ") and its history will be removed for good."),
          h("p", { class: "muted" }, "The target repository is not changed. To keep the record but hide it, archive it instead."),
        ],
        confirmLabel: "Delete job",
      });
      if (!ok) return;
    }
    try {
      if (what === "delete") await api.remove(job.id);
      else if (what === "archive") await api.archive(job.id);
      else await api.unarchive(job.id);
      const done = { delete: "deleted", archive: "archived", unarchive: "unarchived" }[what];
      flash(`Job ${definitionLabel(job)} (${shortId(job.id)}) ${done}.`, "notice");
    } catch (err) {
      flash(`Could not ${what} the job: ${err.message}`);
    }
    await load();
  }

  function renderRows(data) {
    const items = data.items ?? [];
    if (!items.length) {
      replace(tbody, h("tr", {}, h("td", { colspan: 7, class: "empty", testid: "jobs-empty" },
        query.status || query.definition_id ? "No job instance matches these filters." : "No job instances yet. Jobs appear here as soon as they are requested.")));
      return;
    }
    replace(tbody, items.map((job) => h("tr", { testid: "job-row", dataset: { jobId: job.id, status: job.status }, class: job.archived ? "is-archived" : "" },
      h("td", {},
        h("a", { class: "cell-title", href: `#/jobs/${encodeURIComponent(job.id)}` }, definitionLabel(job)),
        h("div", { class: "cell-sub" }, h("code", { title: job.id }, shortId(job.id)),
          job.archived ? h("span", { class: "tag", testid: "archived-tag" }, "Archived") : null, dryRunTag(job),
          revertMark(job, { link: false })),
      ),
      h("td", {}, statusBadge(job.status, "job-status"), blockedSummary(job)),
      h("td", {}, h("span", { class: "origin" }, job.origin ?? "—"), job.requested_by ? h("div", { class: "cell-sub" }, job.requested_by) : null),
      h("td", {}, when(job.created_at)),
      h("td", {}, when(job.started_at)),
      h("td", {}, when(job.ended_at)),
      h("td", { class: "col-actions" }, rowActions(job)),
    )));
  }

  // A job at its threshold says where it stopped and why, so the list is enough to triage.
  function blockedSummary(job) {
    if (job.status !== "THRESHOLD") return null;
    const seq = (job.sequences ?? []).find((s) => s.status === "THRESHOLD" && s.threshold);
    if (!seq) return null;
    const t = seq.threshold;
    const limit = t.limit === "percent" ? `${t.limit_value}%` : count(t.limit_value);
    return h("div", { class: "cell-sub blocked", testid: "job-blocked" },
      h("strong", { testid: "job-blocked-sequence" }, seq.name), ": ",
      h("span", { class: `action action--${t.action}`, testid: "job-blocked-action" }, t.action), ` ${count(t.actual)} (limit ${limit})`);
  }

  function pageButton(label, testid, page, disabled, aria) {
    return h("button", { type: "button", class: "btn btn--small btn--ghost", testid, disabled, "aria-label": aria, onclick: () => go({ page }) }, label);
  }

  function renderPager(data) {
    const pages = Math.max(1, data.pages ?? 1);
    const page = data.page ?? query.page;
    const total = data.total ?? 0;
    const from = total ? (page - 1) * data.page_size + 1 : 0;
    const to = Math.min(total, page * data.page_size);
    summary.textContent = `${count(total)} job instance${total === 1 ? "" : "s"}${query.archived === "any" ? ", archived included" : ""}`;
    replace(pager,
      h("span", { class: "pager__range", testid: "page-range" }, total ? `Showing ${from}–${to} of ${count(total)}` : "Nothing to show"),
      h("div", { class: "pager__buttons" },
        pageButton("« First", "first-page", 1, page <= 1, "First page"),
        pageButton("‹ Prev", "prev-page", page - 1, page <= 1, "Previous page"),
        h("span", { class: "pager__pos", testid: "page-info", "aria-current": "page" }, `Page ${page} of ${pages}`),
        pageButton("Next ›", "next-page", page + 1, page >= pages, "Next page"),
        pageButton("Last »", "last-page", pages, page >= pages, "Last page"),
      ),
    );
  }

  async function load({ quiet = false } = {}) {
    clearTimeout(timer);
    inflight?.abort();
    inflight = new AbortController();
    if (!quiet) table.setAttribute("aria-busy", "true");
    try {
      const data = await api.listJobs({ ...query, sort: "-created_at" }, inflight.signal);
      if (!alive) return;
      if (data.pages && query.page > data.pages) {
        go({ page: data.pages });
        return;
      }
      show(data);
      if (!stream) follow();
    } catch (err) {
      if (err.name === "AbortError" || !alive) return;
      table.setAttribute("aria-busy", "false");
      if (!lastPage) replace(tbody, h("tr", {}, h("td", { colspan: 7, class: "empty" }, `The jobs could not be loaded: ${err.message}`)));
      else flash(`The jobs could not be refreshed: ${err.message}`);
    }
  }

  function show(data) {
    lastPage = data;
    renderRows(data);
    renderPager(data);
    table.setAttribute("aria-busy", "false");
    restoreFocus();
  }

  // job-api pushes this page whenever it changes (GET /api/v1/jobs/events with the same
  // parameters): new jobs and every status change show without a timer in the page.
  function follow() {
    const url = new URL(api.jobEventsUrl(null), location.origin);
    for (const [k, v] of Object.entries({ ...query, sort: "-created_at" })) if (v !== "" && v != null) url.searchParams.set(k, String(v));
    stream = new EventSource(url);
    stream.addEventListener("jobs", (event) => {
      if (!alive) return;
      const data = JSON.parse(event.data);
      if (data.pages && query.page > data.pages) return go({ page: data.pages });
      show(data);
    });
    stream.addEventListener("error", () => {
      // Reconnected by EventSource after a stream ends; CLOSED when refused (a session that
      // ended): a plain read says why, then the page follows again.
      if (!alive || stream.readyState !== EventSource.CLOSED) return;
      stream = null;
      clearTimeout(timer);
      timer = setTimeout(() => load({ quiet: true }), RETRY_MS);
    });
  }

  function restoreFocus() {
    if (!focusAfterLoad) return;
    const wanted = main.querySelector(`[data-testid="${focusAfterLoad}"]`);
    focusAfterLoad = null;
    const target = wanted && !wanted.disabled ? wanted : pager.querySelector("button:not(:disabled)");
    if (wanted?.tagName === "SELECT" || wanted?.type === "checkbox" || pager.contains(wanted)) target?.focus();
  }

  async function loadDefinitions() {
    try {
      const items = [];
      // Paged by the API; a console with more than a few thousand definitions needs a search box.
      for (let page = 1; page <= 30; page += 1) {
        const data = await api.definitions(page);
        items.push(...(data?.items ?? []));
        if (!data?.pages || page >= data.pages) break;
      }
      if (!alive) return;
      replace(definitionSelect,
        h("option", { value: "" }, "All definitions"),
        items.map((d) => h("option", { value: d.id, selected: d.id === query.definition_id }, d.name ? `${d.name} (${d.id})` : d.id)),
      );
    } catch {
      // The filter still works with the id from the address; the list is a convenience.
    }
  }

  load();
  loadDefinitions();
  return () => {
    alive = false;
    clearTimeout(timer);
    inflight?.abort();
    stream?.close();
  };
}
