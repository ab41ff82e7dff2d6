// Reverting an applied sequence: the Revert button of a completed sequence, the panel of the
// revert's preview (a dry run of the revert job: counts, conflicts, confirm), and the mark a
// revert job carries wherever it is shown.

import { api } from "../api.js";
import { confirmDialog, flash, h, replace } from "../dom.js";
import { can, count, offers, shortId } from "../format.js";

const CONFLICT_PAGE_SIZE = 10;
const REASONS = {
  changed: "changed since the sequence ran",
  gone: "gone since the sequence ran",
  back: "back since the sequence deleted it",
};

// "Revert of job 1a2b3c4d, sequence 1": on the job page, with a link, and in the list.
export function revertMark(job, { link = true } = {}) {
  const r = job?.reverts;
  if (!r) return null;
  const target = link
    ? h("a", { href: `#/jobs/${encodeURIComponent(r.job_id)}`, testid: "revert-of-link" }, shortId(r.job_id))
    : h("code", { title: r.job_id }, shortId(r.job_id));
  return h("span", { class: "tag tag--revert", testid: "revert-of", dataset: { jobId: r.job_id } },
    job.dry_run ? "Revert preview of job " : "Revert of job ", target, `, sequence ${r.sequence_index + 1}`,
    r.include_conflicts ? " (conflicts included)" : "");
}

// The button on a completed sequence of an applied job, for whom the server offers it: it asks
// for the preview (the revert job as a dry run) and opens it.
export function revertButton(job, seq, navigate) {
  if (!offers(job, "revert") || seq.status !== "COMPLETED") return null;
  return h("button", {
    type: "button",
    class: "btn btn--small btn--danger-ghost",
    testid: "btn-revert",
    "aria-label": `Revert ${seq.name}`,
    onclick: async (event) => {
      event.target.disabled = true;
      try {
        const preview = await api.revert(job.id, seq.index, { dry_run: true });
        flash(`Preview of the revert of ${seq.name}: planned against the target as it is now; nothing is written.`, "notice");
        navigate(`/jobs/${encodeURIComponent(preview.id)}`);
      } catch (err) {
        flash(`Could not preview the revert: ${err.message}`);
        event.target.disabled = false;
      }
    },
  }, "Revert");
}

// The preview's panel, above the job's facts: what the revert would do, the conflicts, and the
// confirm. Drawn again only when the preview's plan or status changes, so the choice made in
// it survives the job's live updates.
export function revertPanel(slot, { me, navigate }) {
  let drawn = "";
  return (job) => {
    const r = job.reverts;
    const seq = job.sequences?.[0];
    if (!r || !job.dry_run || !seq) {
      if (drawn) replace(slot);
      drawn = "";
      return;
    }
    const key = `${job.id}:${job.status}:${seq.plan_id}:${JSON.stringify(seq.planned)}`;
    if (key === drawn) return;
    drawn = key;
    const planned = seq.planned;
    const conflictRows = h("tbody", {}, h("tr", {}, h("td", { colspan: 4, class: "empty" }, planned ? "Loading the conflicts…" : "Not planned yet.")));
    const include = h("input", { type: "checkbox", id: "revert-include-conflicts", testid: "revert-include-conflicts" });
    const finished = job.status === "COMPLETED";
    const confirm = can(me, "revert") && finished
      ? h("div", { class: "revert__confirm" },
        h("label", { for: "revert-include-conflicts", class: "check" }, include,
          " Include conflicts: force the records changed since the sequence ran back to their state before it"),
        h("button", { type: "button", class: "btn btn--danger", testid: "btn-confirm-revert", onclick: () => onConfirm(job, include.checked) }, "Revert"))
      : null;
    replace(slot, h("section", { class: "card revert", testid: "revert-panel", "aria-labelledby": "revert-title" },
      h("h2", { id: "revert-title" }, "Revert preview"),
      h("p", {}, "What reverting sequence ", h("strong", {}, String(r.sequence_index + 1)), " of job ",
        h("a", { href: `#/jobs/${encodeURIComponent(r.job_id)}` }, h("code", {}, shortId(r.job_id))),
        " would write, planned against the target as it is now. Nothing has been written."),
      planned
        ? h("dl", { class: "facts facts--threshold" },
          fact("Deletions", count(planned.delete), "revert-delete"),
          fact("Updates", count(planned.update), "revert-update"),
          fact("Creations", count(planned.create), "revert-create"),
          fact("Conflicts", count(planned.conflicts ?? 0), "revert-conflicts"),
          seq.threshold ? fact("Threshold", `the revert would stop at its ${seq.threshold.action} limit (${count(seq.threshold.actual)} planned)`, "revert-threshold") : null)
        : h("p", { class: "muted" }, "Planning the inverse of the applied plan…"),
      h("h3", {}, "Conflicts"),
      h("p", { class: "muted" }, "Records changed since the sequence ran: left as they are now, unless you include them."),
      h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "conflicts-table" },
        h("caption", { class: "visually-hidden" }, "Conflicts of the revert"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Why"),
          h("th", { scope: "col" }, "Written by the sequence"), h("th", { scope: "col" }, "Now"))),
        conflictRows)),
      confirm,
    ));
    if (planned) loadConflicts(job, conflictRows);
  };

  async function onConfirm(job, includeConflicts) {
    const r = job.reverts;
    const p = job.sequences[0].planned ?? {};
    const ok = await confirmDialog({
      title: "Revert the sequence?",
      body: [
        h("p", {}, `A new job writes the inverse of what sequence ${r.sequence_index + 1} of job ${shortId(r.job_id)} applied: `,
          `${count(p.delete)} deletions, ${count(p.update)} updates, ${count(p.create)} creations, planned again against the target as it is then.`),
        h("p", { testid: "revert-confirm-conflicts" }, includeConflicts
          ? `The ${count(p.conflicts ?? 0)} conflicts are forced back to their state before the sequence.`
          : `The ${count(p.conflicts ?? 0)} conflicts are left as they are.`),
        h("p", { class: "muted" }, "It is held against the sequence's thresholds like any job."),
      ],
      confirmLabel: "Revert",
    });
    if (!ok) return;
    try {
      const made = await api.revert(r.job_id, r.sequence_index, { include_conflicts: includeConflicts });
      flash("Revert requested.", "notice");
      navigate(`/jobs/${encodeURIComponent(made.id)}`);
    } catch (err) {
      flash(`Could not revert: ${err.message}`);
    }
  }

  async function loadConflicts(job, body) {
    try {
      const data = await api.conflicts(job.id, 0, { page: 1, page_size: CONFLICT_PAGE_SIZE });
      const items = data.items ?? [];
      replace(body, items.length
        ? [...items.map((c) => h("tr", { testid: "conflict-row", dataset: { key: String(c.key), reason: c.reason } },
          h("td", {}, h("code", {}, String(c.key))),
          h("td", {}, REASONS[c.reason] ?? c.reason, c.forced ? h("div", { class: "cell-sub" }, `forced: ${c.forced}`) : null),
          h("td", {}, record(c.after ?? c.before)),
          h("td", { testid: "conflict-current" }, record(c.current)))),
        data.total > items.length ? h("tr", {}, h("td", { colspan: 4, class: "muted" }, `and ${count(data.total - items.length)} more`)) : null]
        : h("tr", {}, h("td", { colspan: 4, class: "empty", testid: "no-conflicts" }, "No conflict: every record is as the sequence left it.")));
    } catch (err) {
      replace(body, h("tr", {}, h("td", { colspan: 4, class: "empty" }, `The conflicts could not be loaded: ${err.message}`)));
    }
  }
}

function fact(label, value, testid) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", { testid }, value));
}

function record(values) {
  if (!values) return h("span", { class: "muted" }, "(none)");
  return h("dl", { class: "record" }, Object.keys(values).filter((k) => k !== "_id").map((k) =>
    h("div", { class: "record__attr" }, h("dt", {}, k), h("dd", {}, typeof values[k] === "string" ? values[k] : JSON.stringify(values[k])))));
}
