// The pager under a table, as on the jobs page: First / Prev / Page X of Y / Next / Last.

import { h, replace } from "./dom.js";
import { count } from "./format.js";

export function renderPager(pager, data, { noun, go }) {
  const pages = Math.max(1, data.pages ?? 1);
  const page = data.page ?? 1;
  const total = data.total ?? 0;
  const from = total ? (page - 1) * data.page_size + 1 : 0;
  const to = Math.min(total, page * data.page_size);
  const button = (label, testid, target, disabled, aria) =>
    h("button", { type: "button", class: "btn btn--small btn--ghost", testid, disabled, "aria-label": aria, onclick: () => go(target) }, label);
  replace(pager,
    h("span", { class: "pager__range", testid: "page-range" }, total ? `Showing ${from}–${to} of ${count(total)} ${noun}` : "Nothing to show"),
    h("div", { class: "pager__buttons" },
      button("« First", "first-page", 1, page <= 1, "First page"),
      button("‹ Prev", "prev-page", page - 1, page <= 1, "Previous page"),
      h("span", { class: "pager__pos", testid: "page-info", "aria-current": "page" }, `Page ${page} of ${pages}`),
      button("Next ›", "next-page", page + 1, page >= pages, "Next page"),
      button("Last »", "last-page", pages, page >= pages, "Last page"),
    ),
  );
}

export function positiveInt(raw, fallback) {
  const n = Number(raw);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}
