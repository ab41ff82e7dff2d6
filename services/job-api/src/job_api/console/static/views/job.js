// The detail of one job instance: its sequences, live while it runs, and the threshold decision.

import { api } from "../api.js";
import { confirmDialog, flash, h, replace } from "../dom.js";
import { ACTIVE, count, definitionLabel, dryRunTag, duration, offers, shortId, statusBadge, when } from "../format.js";
import { targetText } from "./definitions.js";
import { revertButton, revertMark, revertPanel } from "./revert.js";
import { notificationsSection } from "./job-notifications.js";

// How long to wait before reading the job again when its event stream was refused.
const POLL_MS = 1500;
// After a command the projection changes within moments; stop waiting after this long.
const PENDING_MS = 60000;
const CHANGE_PAGE_SIZE = 10;
const ACTION_WORDS = {
  create: ["creation", "creations"],
  update: ["update", "updates"],
  delete: ["deletion", "deletions"],
  disable: ["disable", "disables"],
};
// The letter of each count; a disable (a target's deprovision: "disable") is its own action,
// held against the delete threshold with the deletions, and shown only when there are some.
const COUNT_LABELS = { create: "C", update: "U", delete: "D", disable: "Dis", unchanged: "=" };
const PLANNED_KEYS = ["create", "update", "delete", "disable", "unchanged"];
const APPLIED_KEYS = ["create", "update", "delete", "disable"];

function actionWord(action, n) {
  const [one, many] = ACTION_WORDS[action] ?? [action, action];
  return n === 1 ? one : many;
}

function commandName(type) {
  const name = String(type ?? "").replace(/^provisioning\./, "");
  return { ValidateThreshold: "Validate", CancelJob: "Cancel", RestartJob: "Restart" }[name] ?? name;
}

function blockedSequence(job) {
  const seqs = job.sequences ?? [];
  return seqs.find((s) => s.status === "THRESHOLD") ?? seqs.find((s) => s.status === "VALIDATED" && s.threshold) ?? null;
}

export function mountJobDetail(main, { me, navigate, jobId }) {
  let alive = true;
  let timer = null;
  let inflight = null;
  let job = null;
  let lastJson = "";
  let pending = null; // { from: status, until: ms, what }
  const changes = { index: null, planId: null, action: "", page: 1 };

  const head = h("div", { class: "page-head" });
  const facts = h("section", { class: "card", "aria-label": "Job instance" });
  const thresholdSlot = h("div");
  const sequencesSlot = h("section", { class: "card card--flush", "aria-labelledby": "sequences-title" });
  const changesSlot = h("div");
  const revertSlot = h("div");
  const renderRevert = revertPanel(revertSlot, { me, navigate });
  const notifications = notificationsSection(jobId);
  let notifiedStatus = null; // the status the notifications were last read at

  replace(main,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("a", { href: "#/jobs", testid: "back-to-jobs" }, "Jobs"), h("span", { "aria-hidden": "true" }, " / "),
      h("span", { "aria-current": "page" }, shortId(jobId))),
    head, revertSlot, thresholdSlot, facts, sequencesSlot, changesSlot, notifications.element,
  );
  replace(facts, h("p", { class: "muted" }, "Loading the job instance…"));

  // ---- actions ----
  function actionButtons() {
    if (!job) return [];
    const busy = Boolean(pending);
    const buttons = [];
    const add = (action, label, testid, cls, fn) => {
      if (offers(job, action)) buttons.push(h("button", { type: "button", class: `btn ${cls}`, testid, disabled: busy, onclick: fn }, label));
    };
    // A dry run never stops at a threshold; should a newer server offer it anyway, a dry run's
    // plan is not for approving. Restarting one plans again, as a dry run: nothing is applied.
    if (!job.dry_run) add("validate", "Validate", "btn-validate", "btn--primary", onValidate);
    add("restart", job.dry_run ? "Restart dry run" : "Restart", "btn-restart", "btn--primary", onRestart);
    add("cancel", "Cancel job", "btn-cancel", "btn--danger", onCancel);
    add("archive", "Archive", "btn-archive", "btn--ghost", () => simple("archive"));
    add("unarchive", "Unarchive", "btn-unarchive", "btn--ghost", () => simple("unarchive"));
    add("delete", "Delete", "btn-delete", "btn--danger-ghost", onDelete);
    return buttons;
  }

  async function command(what, call, notice) {
    try {
      const accepted = await call();
      pending = { from: job.status, until: Date.now() + PENDING_MS, what, commandId: accepted?.command_id ?? null };
      pending.notice = flash(notice, "notice");
      render(true);
      // The event stream brings the change; this only ends the wait if none comes.
      clearTimeout(timer);
      timer = setTimeout(() => apply(job), PENDING_MS + 50);
    } catch (err) {
      flash(`Could not ${what}: ${err.message}`);
      await load();
    }
  }

  async function onValidate() {
    const seq = blockedSequence(job);
    const p = seq?.planned ?? {};
    const ok = await confirmDialog({
      title: "Validate the planned changes?",
      body: [
        h("p", {}, "You approve what sequence ", h("strong", {}, seq?.name ?? "?"), " plans to write:"),
        h("ul", { class: "count-list" },
          h("li", {}, `${count(p.create)} ${actionWord("create", p.create)}`),
          h("li", {}, `${count(p.update)} ${actionWord("update", p.update)}`),
          h("li", {}, `${count(p.delete)} ${actionWord("delete", p.delete)}`),
          p.disable ? h("li", { testid: "validate-disables" }, `${count(p.disable)} ${actionWord("disable", p.disable)} (accounts locked, not deleted)`) : null),
        h("p", { class: "muted" }, "Nothing is written yet: the job waits as Validated until it is restarted. A restart that plans more than this stops again."),
      ],
      confirmLabel: "Validate",
      danger: false,
    });
    if (!ok) return;
    await command("validate the threshold", () => api.validate(job.id, seq?.plan_id), "Validation sent. The job becomes Validated in a moment.");
  }

  async function onCancel() {
    const seq = blockedSequence(job);
    const ok = await confirmDialog({
      title: "Cancel this job?",
      body: [
        h("p", {}, seq ? ["Sequence ", h("strong", {}, seq.name), " will be canceled", ...laterNames(seq), "."] : "The job's remaining sequences will be canceled."),
        h("p", { class: "muted" }, "Nothing more is written to the target repository. This cannot be undone; request a new job to try again."),
      ],
      confirmLabel: "Cancel job",
    });
    if (!ok) return;
    await command("cancel the job", () => api.cancel(job.id), "Cancel sent. The job becomes Canceled in a moment.");
  }

  function laterNames(seq) {
    const later = (job.sequences ?? []).filter((s) => s.index > seq.index).map((s) => s.name);
    if (!later.length) return [];
    const names = later.flatMap((name, i) => [i ? ", " : "", h("strong", {}, name)]);
    return [later.length === 1 ? ", and so will the sequence after it: " : `, and so will the ${later.length} sequences after it: `, ...names];
  }

  async function onRestart() {
    await command("restart the job", () => api.restart(job.id), "Restart sent. Completed sequences are skipped; the job runs again.");
  }

  async function simple(what) {
    try {
      if (what === "archive") await api.archive(job.id);
      else await api.unarchive(job.id);
      flash(`Job ${what}d.`, "notice");
    } catch (err) {
      flash(`Could not ${what} the job: ${err.message}`);
    }
    await load();
  }

  async function onDelete() {
    const ok = await confirmDialog({
      title: "Delete this job instance?",
      body: [
        h("p", {}, "The job ", h("strong", {}, definitionLabel(job)), " (", h("code", {}, job.id), ") and its history will be removed for good."),
        h("p", { class: "muted" }, "The target repository is not changed. To keep the record but hide it, archive it instead."),
      ],
      confirmLabel: "Delete job",
    });
    if (!ok) return;
    try {
      await api.remove(job.id);
      flash(`Job ${definitionLabel(job)} (${shortId(job.id)}) deleted.`, "notice");
      navigate("/jobs");
    } catch (err) {
      flash(`Could not delete the job: ${err.message}`);
      await load();
    }
  }

  // ---- rendering ----
  function fact(label, value, testid) {
    return h("div", { class: "fact" }, h("dt", {}, label), h("dd", { testid }, value ?? h("span", { class: "muted" }, "—")));
  }

  function renderHead() {
    const waiting = pending ? h("span", { class: "pending", role: "status", testid: "pending" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Waiting for the runner…") : null;
    replace(head,
      h("div", {},
        h("h1", {}, definitionLabel(job), " ", statusBadge(job.status, "job-status"),
          job.archived ? h("span", { class: "tag", testid: "archived-tag" }, "Archived") : null, " ", dryRunTag(job)),
        h("p", { class: "muted" }, "Job instance ", h("code", { testid: "job-id" }, job.id), " ", revertMark(job)),
      ),
      h("div", { class: "head-actions" }, waiting, actionButtons()),
    );
  }

  function renderFacts() {
    const rejected = job.last_rejected_command;
    replace(facts,
      h("h2", { class: "visually-hidden" }, "Details"),
      h("dl", { class: "facts", testid: "job-facts" },
        fact("Definition", [definitionLabel(job), h("div", { class: "cell-sub" }, h("code", {}, job.definition_id ?? ""), job.definition_version ? `version ${job.definition_version}` : "")]),
        fact("Origin", job.origin, "job-origin"),
        fact("Requested by", job.requested_by),
        fact("Created", when(job.created_at)),
        fact("Started", when(job.started_at)),
        fact("Ended", when(job.ended_at)),
        job.started_at && (job.ended_at || ACTIVE.has(job.status)) ? fact("Duration", duration(job.started_at, job.ended_at)) : null,
        job.attempt ? fact("Attempt", String(job.attempt)) : null,
        job.validated_by ? fact("Validated", [job.validated_by, ", ", when(job.validated_at)]) : null,
        job.restarted_by ? fact("Restarted by", who(job.restarted_by, job.restarted_at)) : null,
        job.canceled_by ? fact("Canceled by", who(job.canceled_by, job.canceled_at)) : null,
        job.archived_by ? fact("Archived by", who(job.archived_by, job.archived_at)) : null,
        job.failure ? fact("Failure", h("span", { class: "error-text" }, job.failure), "job-failure") : null,
        rejected ? fact("Last refused command", [h("strong", {}, commandName(rejected.command)), rejected.requested_by ? ` by ${rejected.requested_by}` : "", rejected.at ? [", ", when(rejected.at)] : "", h("div", { class: "cell-sub" }, rejected.reason)], "job-rejected-command") : null,
      ),
    );
  }

  function who(name, at) {
    return [name, at ? h("div", { class: "cell-sub" }, when(at)) : null];
  }

  function approvalText(a) {
    const disables = a?.disable ? ` · Dis ${count(a.disable)}` : "";
    return a ? ` (C ${count(a.create)} · U ${count(a.update)} · D ${count(a.delete)}${disables})` : "";
  }

  function countsCell(c, keys) {
    if (!c) return h("span", { class: "muted" }, "—");
    const shown = keys.filter((k) => k !== "disable" || c[k]);
    return h("span", { class: "counts" }, shown.map((k) =>
      h("span", { class: `count count--${k}`, title: `${k}: ${c[k] ?? 0}`, testid: `count-${k}` }, h("span", { class: "count__k" }, COUNT_LABELS[k] ?? k), count(c[k] ?? 0))));
  }

  function progressCell(seq) {
    const p = seq.progress;
    if (seq.status !== "RUNNING") return null;
    const label = p ? `${p.phase === "applying" ? "Applying" : "Planning"} ${count(p.done)}${p.total != null ? ` / ${count(p.total)}` : ""}` : "Starting…";
    const bar = h("progress", { class: "progress", testid: "sequence-progress", "aria-label": `Progress of ${seq.name}` });
    if (p && p.total) {
      bar.max = p.total;
      bar.value = Math.min(p.done, p.total);
    }
    return h("div", { class: "progress-wrap" }, bar, h("span", { class: "progress-label" }, label));
  }

  function renderSequences() {
    const seqs = job.sequences ?? [];
    replace(sequencesSlot,
      h("div", { class: "card__head" }, h("h2", { id: "sequences-title" }, "Sequences"),
        ACTIVE.has(job.status) ? h("span", { class: "live", testid: "live" }, h("span", { class: "live__dot", "aria-hidden": "true" }), "Live") : null),
      h("div", { class: "table-wrap" },
        h("table", { class: "table table--sequences", testid: "sequences-table" },
          h("caption", { class: "visually-hidden" }, "Sequence instances of this job"),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col", class: "num" }, "#"),
            h("th", { scope: "col" }, "Sequence"),
            h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col" }, "Started"),
            h("th", { scope: "col" }, "Ended"),
            h("th", { scope: "col" }, h("abbr", { title: "Planned: Create, Update, Delete, Dis(able), = unchanged; target size before the sequence" }, "Planned")),
            h("th", { scope: "col" }, h("abbr", { title: "Applied to the target: Create, Update, Delete, Dis(able)" }, "Applied")),
            h("th", { scope: "col", class: "col-actions" }, h("span", { class: "visually-hidden" }, "Changes")),
          )),
          h("tbody", {}, seqs.length ? seqs.map((seq) => h("tr", { testid: "sequence-row", dataset: { index: seq.index, status: seq.status }, class: seq.index === changes.index ? "is-selected" : "" },
            h("td", { class: "num" }, String(seq.index + 1)),
            h("td", {}, h("span", { class: "cell-title" }, seq.name),
              // Where the sequence writes, as the definition snapshot the job runs names it.
              h("div", { class: "cell-sub", testid: "sequence-target" }, "→ ", targetText(job.definition?.sequences?.[seq.index]?.target)),
              seq.failure ? h("div", { class: "cell-sub error-text", testid: "sequence-failure" }, seq.failure) : null,
              seq.validated_by ? h("div", { class: "cell-sub", testid: "sequence-approval" }, "approved by ", seq.validated_by, approvalText(seq.approval)) : null,
              seq.canceled_by ? h("div", { class: "cell-sub" }, "canceled by ", seq.canceled_by) : null,
              progressCell(seq)),
            h("td", {}, statusBadge(seq.status, "sequence-status")),
            h("td", {}, when(seq.started_at)),
            h("td", {}, when(seq.ended_at)),
            h("td", {}, countsCell(seq.planned, PLANNED_KEYS),
              seq.planned ? h("div", { class: "cell-sub" }, `target had ${count(seq.planned.target_size)}`) : null),
            h("td", {}, countsCell(seq.applied, APPLIED_KEYS)),
            h("td", { class: "col-actions" }, seq.planned && (seq.planned.create + seq.planned.update + seq.planned.delete + (seq.planned.disable ?? 0) > 0)
              ? h("button", { type: "button", class: "btn btn--small btn--ghost", testid: "btn-changes", "aria-label": `Planned changes of ${seq.name}`, onclick: () => selectChanges(seq) }, "Changes")
              : null, revertButton(job, seq, navigate)),
          )) : h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No sequences yet."))),
        ),
      ),
    );
  }

  // The delete threshold is held against deletions and disables together.
  function thresholdWord(t, planned, n) {
    return t.action === "delete" && planned?.disable ? "deletions and disables" : actionWord(t.action, n);
  }

  function limitText(t, planned) {
    const word = thresholdWord(t, planned, 2);
    if (t.limit === "percent") {
      const records = t.limit_records != null ? ` = ${count(t.limit_records)} ${word}` : "";
      return `${t.limit_value}% of the ${count(planned?.target_size)} records in the target${records}`;
    }
    if (t.limit === "approved") return `${count(t.limit_value)} ${word} approved by an operator`;
    return `${count(t.limit_value)} ${word}`;
  }

  // A dry run: each sequence's plan and counts as a blocked sequence's are shown, and the
  // threshold each would have stopped at; there is nothing to decide.
  function renderDryRun() {
    const planned = (job.sequences ?? []).filter((s) => s.planned);
    const stops = planned.filter((s) => s.threshold);
    replace(thresholdSlot, h("section", { class: "card threshold threshold--dry-run", testid: "dry-run-panel", "aria-labelledby": "dry-run-title" },
      h("h2", { id: "dry-run-title" }, "Dry run: nothing is written"),
      h("p", {}, "Every sequence is planned against the target repository as it is now, and held against its thresholds. ",
        "Nothing was applied and nothing ever will be: to make these changes, request the job without dry run."),
      planned.length ? planned.map((seq) => {
        const t = seq.threshold;
        return h("dl", { class: "facts facts--threshold dry-run-sequence", testid: "dry-run-sequence", dataset: { index: seq.index, stops: String(Boolean(t)) } },
          fact("Sequence", [h("strong", {}, seq.name), ` (#${seq.index + 1})`], "dry-run-sequence-name"),
          fact("Whole plan", countsCell(seq.planned, ["create", "update", "delete", "unchanged"]), "dry-run-plan"),
          t ? fact("Would stop at", [h("span", { class: `action action--${t.action}` }, t.action), " ", h("strong", {}, `${count(t.actual)} ${actionWord(t.action, t.actual)}`), h("div", { class: "cell-sub" }, "limit ", limitText(t, seq.planned))], "dry-run-threshold")
            : fact("Thresholds", "within every threshold: a real run would apply this plan", "dry-run-threshold"),
          h("div", { class: "fact" }, h("dt", {}, "Changes"), h("dd", {}, seq.planned.create + seq.planned.update + seq.planned.delete > 0
            ? h("button", { type: "button", class: "btn btn--small btn--ghost", testid: "dry-run-changes", onclick: () => selectChanges(seq) }, "Planned changes")
            : h("span", { class: "muted" }, "none"))));
      }) : h("p", { class: "muted" }, "No sequence has been planned yet."),
      stops.length ? h("p", { class: "cell-sub", testid: "dry-run-stops" }, `${stops.length} of ${planned.length} sequence${planned.length === 1 ? "" : "s"} would stop at a threshold in a real run.`) : null,
    ));
    // As for a blocked sequence: the changes of the first that would stop are listed at once.
    const first = stops[0] ?? planned.find((s) => s.planned.create + s.planned.update + s.planned.delete > 0);
    if (changes.index === null && first && !ACTIVE.has(job.status)) selectChanges(first, { scroll: false });
  }

  function renderThreshold() {
    if (job.dry_run) {
      renderDryRun();
      return;
    }
    const seq = blockedSequence(job);
    if (!seq || !seq.threshold || !["THRESHOLD", "VALIDATED"].includes(job.status)) {
      replace(thresholdSlot);
      return;
    }
    const t = seq.threshold;
    const validated = job.status === "VALIDATED";
    const by = seq.validated_by ?? job.validated_by;
    const at = seq.validated_at ?? job.validated_at;
    replace(thresholdSlot, h("section", { class: `card threshold ${validated ? "threshold--validated" : ""}`, testid: "threshold-panel", "aria-labelledby": "threshold-title" },
      h("h2", { id: "threshold-title" }, validated ? "Validated: waiting for a restart" : "Stopped at a threshold"),
      h("p", {}, validated
        ? ["The planned changes were approved", by ? [" by ", h("strong", {}, by)] : null, at ? [", ", when(at)] : null,
          ". Nothing has been written yet: restart the job to apply them, or cancel it."]
        : "Nothing has been written to the target repository. Review the planned changes, then validate them or cancel the job."),
      h("dl", { class: "facts facts--threshold" },
        fact("Blocked sequence", [h("strong", {}, seq.name), ` (#${seq.index + 1})`], "threshold-sequence"),
        fact("Action", h("span", { class: `action action--${t.action}` }, t.action), "threshold-action"),
        fact("Limit", limitText(t, seq.planned), "threshold-limit"),
        fact("Planned", h("strong", { class: "big-number" }, `${count(t.actual)} ${thresholdWord(t, seq.planned, t.actual)}`), "threshold-planned"),
        fact("Whole plan", countsCell(seq.planned, PLANNED_KEYS)),
      ),
    ));
    if (changes.index === null) selectChanges(seq, { scroll: false });
  }

  function render(force = false) {
    const json = JSON.stringify(job);
    if (!force && json === lastJson) return;
    lastJson = json;
    document.title = `${definitionLabel(job)} ${shortId(job.id)} · Provisioning Jobs`;
    renderHead();
    renderRevert(job);
    // A revert's preview shows the inverse plan's changes at once, as a blocked sequence does.
    const preview = job.reverts && job.dry_run ? job.sequences?.[0] : null;
    if (preview?.planned && changes.index === null) selectChanges(preview, { scroll: false });
    renderThreshold();
    renderFacts();
    renderSequences();
  }

  // ---- planned changes ----
  function selectChanges(seq, { scroll = true } = {}) {
    changes.index = seq.index;
    changes.name = seq.name;
    changes.planId = seq.plan_id ?? null;
    changes.page = 1;
    changes.action = "";
    loadChanges();
    if (scroll) {
      lastJson = "";
      render();
      changesSlot.scrollIntoView({ behavior: "smooth", block: "start" });
    }
  }

  function attrs(record, other, side) {
    if (!record) return h("span", { class: "muted" }, "—");
    const keys = Object.keys(record).filter((k) => k !== "_id");
    return h("dl", { class: "record" }, keys.map((k) => {
      const changed = other && JSON.stringify(other[k]) !== JSON.stringify(record[k]);
      const v = record[k];
      return h("div", { class: `record__attr${changed ? ` changed--${side}` : ""}` }, h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : JSON.stringify(v)));
    }));
  }

  async function loadChanges() {
    if (changes.index === null) return;
    const index = changes.index;
    const actionSelect = h("select", { id: "changes-action", testid: "changes-action", onchange: () => { changes.action = actionSelect.value; changes.page = 1; loadChanges(); } },
      h("option", { value: "" }, "All actions"),
      APPLIED_KEYS.map((a) => h("option", { value: a, selected: a === changes.action }, a)));
    const body = h("tbody", {}, h("tr", {}, h("td", { colspan: 4, class: "empty" }, "Loading the planned changes…")));
    const pager = h("div", { class: "pager" });
    replace(changesSlot, h("section", { class: "card card--flush", testid: "changes-panel", "aria-labelledby": "changes-title" },
      h("div", { class: "card__head" },
        h("h2", { id: "changes-title" }, "Planned changes of ", h("span", { testid: "changes-sequence" }, changes.name ?? `#${index + 1}`)),
        h("div", { class: "field field--inline" }, h("label", { for: "changes-action" }, "Action"), actionSelect)),
      h("div", { class: "table-wrap" }, h("table", { class: "table table--changes", testid: "changes-table" },
        h("caption", { class: "visually-hidden" }, "Planned changes, page by page"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Action"), h("th", { scope: "col" }, "Before"), h("th", { scope: "col" }, "After"))),
        body)),
      pager,
    ));
    try {
      const data = await api.changes(job.id, index, { action: changes.action, page: changes.page, page_size: CHANGE_PAGE_SIZE });
      if (!alive || changes.index !== index) return;
      const items = data.items ?? [];
      replace(body, items.length ? items.map((c) => h("tr", { testid: "change-row", dataset: { action: c.action } },
        // A directory target names the entry each change is written to.
        h("td", {}, h("code", {}, String(c.key)), c.dn ? h("div", { class: "cell-sub", testid: "change-dn" }, c.dn) : null),
        h("td", {}, h("span", { class: `action action--${c.action}` }, c.action)),
        h("td", {}, attrs(c.before, c.after, "before")),
        h("td", {}, attrs(c.after, c.before, "after")),
      )) : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No planned change of this kind.")));
      const pages = Math.max(1, data.pages ?? 1);
      const page = data.page ?? changes.page;
      const goto = (p) => { changes.page = p; loadChanges(); };
      replace(pager,
        h("span", { class: "pager__range", testid: "changes-total" }, `${count(data.total ?? items.length)} change${(data.total ?? items.length) === 1 ? "" : "s"}`),
        h("div", { class: "pager__buttons" },
          h("button", { type: "button", class: "btn btn--small btn--ghost", testid: "changes-prev", disabled: page <= 1, onclick: () => goto(page - 1) }, "‹ Prev"),
          h("span", { class: "pager__pos", testid: "changes-page-info" }, `Page ${page} of ${pages}`),
          h("button", { type: "button", class: "btn btn--small btn--ghost", testid: "changes-next", disabled: page >= pages, onclick: () => goto(page + 1) }, "Next ›")),
      );
    } catch (err) {
      if (!alive || changes.index !== index) return;
      replace(body, h("tr", {}, h("td", { colspan: 4, class: "empty" }, `The planned changes could not be loaded: ${err.message}`)));
    }
  }

  // ---- following the job: server-sent events ----
  // job-api pushes the job instance whenever it changes (GET /api/v1/jobs/{id}/events), so
  // the page has no polling timer; a timer runs only to give up waiting on a command.
  let stream = null;

  function apply(fresh) {
    const prev = job;
    job = fresh;
    let force = false;
    if (pending) {
      const refused = pending.commandId && job.last_rejected_command?.command_id === pending.commandId;
      if (refused) flash(`The sequence runner refused the command: ${job.last_rejected_command.reason}`);
      else if (job.status === pending.from && Date.now() > pending.until) flash("The job has not changed yet. The runner may be busy; refresh in a while.");
      if (refused || job.status !== pending.from || Date.now() > pending.until) {
        pending.notice?.remove();
        pending = null;
        force = true;
      }
    }
    const blocked = blockedSequence(job);
    if (prev && blocked?.index !== blockedSequence(prev)?.index) {
      changes.index = null;
      replace(changesSlot);
    }
    render(force);
    // A stop is what sends notifications: read them again when the status moves.
    if (job.status !== notifiedStatus) {
      notifiedStatus = job.status;
      notifications.load();
    }
    clearTimeout(timer);
    if (pending) timer = setTimeout(() => apply(job), Math.max(0, pending.until - Date.now()) + 50);
  }

  function gone() {
    replace(facts, h("p", { testid: "job-missing" }, "This job instance does not exist (it may have been deleted). ", h("a", { href: "#/jobs" }, "Back to the jobs.")));
    replace(head);
    replace(sequencesSlot);
    replace(thresholdSlot);
    replace(changesSlot);
    notifications.element.hidden = true;
  }

  function follow() {
    stream?.close();
    stream = new EventSource(api.jobEventsUrl(jobId));
    stream.addEventListener("job", (event) => {
      if (alive) apply(JSON.parse(event.data));
    });
    stream.addEventListener("deleted", () => {
      stream.close();
      if (alive) gone();
    });
    stream.addEventListener("error", () => {
      // EventSource reconnects by itself after a stream ends; it gives up (CLOSED) when the
      // server refuses, e.g. an expired session: a plain read says why, then we follow again.
      if (!alive || stream.readyState !== EventSource.CLOSED) return;
      clearTimeout(timer);
      timer = setTimeout(load, POLL_MS * 2);
    });
  }

  async function load() {
    clearTimeout(timer);
    inflight?.abort();
    inflight = new AbortController();
    try {
      const fresh = await api.job(jobId, inflight.signal);
      if (!alive) return;
      apply(fresh);
      follow();
    } catch (err) {
      if (err.name === "AbortError" || !alive) return;
      if (err.status === 404) {
        gone();
        return;
      }
      if (err.status === 401) return; // the app shows the sign-in page
      flash(`The job could not be refreshed: ${err.message}`);
      timer = setTimeout(load, POLL_MS * 4);
    }
  }

  load();
  return () => {
    alive = false;
    clearTimeout(timer);
    inflight?.abort();
    stream?.close();
    notifications.stop();
  };
}
