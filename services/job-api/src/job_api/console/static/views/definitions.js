// The job definitions: a page of them, each with its sequences and what guards them.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { can, count } from "../format.js";
import { positiveInt, renderPager } from "../paging.js";
import { scheduleText } from "./definition-schedule.js";

const PAGE_SIZE = 25;

export function thresholdsText(thresholds) {
  const parts = [];
  for (const action of ["create", "update", "delete"]) {
    const limit = thresholds?.[action];
    if (!limit) continue;
    const bits = [];
    if (limit.count != null) bits.push(count(limit.count));
    if (limit.percent != null) bits.push(`${limit.percent}%`);
    parts.push(`${action} ≥ ${bits.join(" or ")}`);
  }
  return parts.join(" · ") || "—";
}

export function targetText(target) {
  if (!target) return "—";
  // Each kind of target names where records go: a collection, or a directory's base DN.
  const where = target.collection ?? target.base_dn ?? target.base ?? "";
  const conn = target.connection ? `${target.connection} ` : "";
  // A directory read as a whole subtree says so; one level is the default.
  const scope = target.scope === "subtree" ? " (subtree)" : "";
  return `${target.type} ${conn}${where}${scope}`.trim();
}

export function sourceText(source) {
  if (!source) return "—";
  return source.path ? `${source.type} ${source.path}` : source.type === "inline" ? "inline (records sent with the request)" : source.type;
}

export function mountDefinitions(main, { me, navigate, params }) {
  let alive = true;
  const page = positiveInt(params.get("page"), 1);
  const tbody = h("tbody", { testid: "definitions-tbody" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of job definitions", testid: "pager" });
  const summary = h("p", { class: "muted summary", testid: "definitions-total", "aria-live": "polite" });
  replace(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Definitions"), summary),
      h("div", { class: "head-actions" },
        can(me, "manage_definitions") ? h("a", { class: "btn btn--primary", href: "#/definitions/new", testid: "btn-new-definition" }, "New definition") : null),
    ),
    h("section", { class: "card card--flush" },
      h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "definitions-table" },
        h("caption", { class: "visually-hidden" }, "Job definitions"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Definition"),
          h("th", { scope: "col" }, "Sequences"),
          h("th", { scope: "col" }, "Thresholds"),
          h("th", { scope: "col", class: "num" }, "Version"),
        )),
        tbody)),
      pager),
  );

  async function load() {
    try {
      const data = await api.definitions(page, PAGE_SIZE);
      if (!alive) return;
      const items = data.items ?? [];
      summary.textContent = `${count(data.total ?? items.length)} job definition${data.total === 1 ? "" : "s"}`;
      replace(tbody, items.length ? items.map((d) => h("tr", { testid: "definition-row", dataset: { definitionId: d.id } },
        h("td", {},
          h("a", { class: "cell-title", href: `#/definitions/${encodeURIComponent(d.id)}` }, d.name),
          h("div", { class: "cell-sub" }, h("code", {}, d.id), d.description ? ` · ${d.description}` : ""),
          d.schedule ? h("div", { class: "cell-sub", testid: "definition-schedule" }, "Scheduled: ", scheduleText(d.schedule)) : null),
        h("td", {}, d.sequences.map((s) => h("div", {}, h("strong", {}, s.name), h("span", { class: "cell-sub" }, ` → ${targetText(s.target)}`)))),
        h("td", {}, d.sequences.map((s) => h("div", { class: "cell-sub" }, thresholdsText(s.thresholds)))),
        h("td", { class: "num" }, String(d.version ?? 1)),
      )) : h("tr", {}, h("td", { colspan: 4, class: "empty", testid: "definitions-empty" }, "No job definitions yet.")));
      renderPager(pager, data, { noun: "definitions", go: (p) => navigate("/definitions", p > 1 ? { page: p } : null) });
    } catch (err) {
      if (!alive) return;
      replace(tbody, h("tr", {}, h("td", { colspan: 4, class: "empty" }, `The definitions could not be loaded: ${err.message}`)));
    }
  }

  load();
  return () => { alive = false; };
}
