// One job definition: its sequences (source, target, key, mapping, thresholds), Run now, its recent jobs.

import { api } from "../api.js";
import { flash, h, replace } from "../dom.js";
import { can, dryRunTag, shortId, statusBadge, when } from "../format.js";
import { scheduleSection } from "./definition-schedule.js";
import { sourceText, targetText, thresholdsText } from "./definitions.js";

// Fields this page lays out itself; any other (added by a newer job-api) is listed as it is.
const KNOWN = new Set(["id", "name", "description", "sequences", "version", "schedule", "recipients", "notify_on", "retention"]);
const STOPS = { threshold: "a threshold", failed: "a failure", completed: "completion" };

// Who is told, by which channel, and on which stops; a webhook's secret lives in the
// notifier's environment, never in the definition, so there is none to show.
function recipientsText(definition) {
  const recipients = definition.recipients ?? [];
  if (!recipients.length) return h("span", { class: "muted" }, "nobody");
  const on = (definition.notify_on ?? ["threshold", "failed"]).map((k) => STOPS[k] ?? k).join(", ");
  return [recipients.map((r) => h("div", { testid: "definition-recipient" }, h("strong", {}, r.name), ": ",
    [r.webhook_url ? ["webhook ", h("code", {}, r.webhook_url)] : null, r.webhook_url && r.email ? ", " : null, r.email ? ["email ", h("code", {}, r.email)] : null])),
  h("div", { class: "cell-sub" }, `on ${on}`)];
}

function retentionText(retention) {
  if (!retention) return h("span", { class: "muted" }, "the system default");
  return `archived ${retention.archive_after_days} days after they end, deleted ${retention.delete_after_days} days after that`;
}

function fact(label, value, testid) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", { testid }, value ?? h("span", { class: "muted" }, "—")));
}

function newRequestId() {
  return `console-${crypto.randomUUID()}`;
}

export function mountDefinition(main, { me, navigate, definitionId }) {
  let alive = true;
  let definition = null;
  const head = h("div", { class: "page-head" });
  const body = h("div", {}, h("p", { class: "card muted" }, "Loading the definition…"));
  const recent = h("section", { class: "card card--flush", "aria-labelledby": "recent-title", testid: "recent-jobs" });
  const dialog = h("dialog", { class: "dialog", testid: "run-dialog", "aria-labelledby": "run-title" });
  const schedule = scheduleSection(definitionId);
  replace(main,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("a", { href: "#/definitions", testid: "back-to-definitions" }, "Definitions"), h("span", { "aria-hidden": "true" }, " / "),
      h("span", { "aria-current": "page" }, definitionId)),
    head, body, schedule.element, recent, dialog,
  );

  function renderHead() {
    const actions = [];
    if (can(me, "submit")) {
      actions.push(h("button", { type: "button", class: "btn btn--primary", testid: "btn-run-now", onclick: openRun }, "Run now"));
    }
    if (can(me, "manage_definitions")) {
      actions.push(h("a", { class: "btn btn--ghost", href: `#/definitions/${encodeURIComponent(definitionId)}/edit`, testid: "btn-edit-definition" }, "Edit"));
    }
    replace(head,
      h("div", {},
        h("h1", { testid: "definition-name" }, definition.name),
        h("p", { class: "muted" }, "Definition ", h("code", { testid: "definition-id" }, definition.id), ` · version ${definition.version ?? 1}`)),
      h("div", { class: "head-actions" }, actions),
    );
  }

  function mappingList(mapping) {
    if (!mapping) return h("span", { class: "muted" }, "the source fields as they are");
    return h("dl", { class: "record", testid: "sequence-mapping" }, Object.entries(mapping).map(([attr, field]) =>
      h("div", { class: "record__attr" }, h("dt", {}, attr), h("dd", {}, `← ${field}`))));
  }

  function renderBody() {
    const extra = Object.entries(definition).filter(([k, v]) => !KNOWN.has(k) && v !== null && v !== undefined);
    replace(body,
      h("section", { class: "card", "aria-label": "Definition" },
        h("dl", { class: "facts" },
          fact("Description", definition.description, "definition-description"),
          fact("Sequences", String(definition.sequences.length)),
          fact("Notified", recipientsText(definition), "definition-recipients"),
          fact("Finished jobs kept", retentionText(definition.retention), "definition-retention"),
          extra.map(([k, v]) => fact(k.replaceAll("_", " "), typeof v === "object" ? h("code", {}, JSON.stringify(v)) : String(v), `definition-${k}`)),
        )),
      definition.sequences.map((s, i) => h("section", { class: "card", testid: "sequence-card", dataset: { name: s.name }, "aria-label": `Sequence ${s.name}` },
        h("h2", {}, `${i + 1}. `, s.name),
        h("dl", { class: "facts" },
          fact("Source", sourceText(s.source), "sequence-source"),
          fact("Target", targetText(s.target), "sequence-target"),
          fact("Key", h("code", {}, s.key), "sequence-key"),
          fact("Deletes missing", s.delete_missing ? "yes: target records the source no longer has are deleted" : "no", "sequence-delete-missing"),
          fact("Thresholds", thresholdsText(s.thresholds), "sequence-thresholds"),
          fact("Mapping", mappingList(s.mapping)),
        ))),
    );
  }

  async function loadRecent() {
    replace(recent, h("div", { class: "card__head" }, h("h2", { id: "recent-title" }, "Recent jobs"),
      h("a", { href: `#/jobs?definition_id=${encodeURIComponent(definitionId)}`, testid: "all-jobs-of-definition" }, "All its jobs")));
    try {
      const data = await api.listJobs({ definition_id: definitionId, page_size: 10, sort: "-created_at", archived: "any" });
      if (!alive) return;
      const items = data.items ?? [];
      recent.append(h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "recent-jobs-table" },
        h("caption", { class: "visually-hidden" }, "The definition's ten newest jobs"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Job"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Requested by"), h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Ended"))),
        h("tbody", {}, items.length ? items.map((job) => h("tr", { testid: "recent-job-row", dataset: { jobId: job.id, status: job.status } },
          h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, h("code", { title: job.id }, shortId(job.id))), " ", dryRunTag(job)),
          h("td", {}, statusBadge(job.status, "job-status")),
          h("td", {}, job.requested_by ?? "—"),
          h("td", {}, when(job.created_at)),
          h("td", {}, when(job.ended_at)),
        )) : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "This definition has not run yet."))))));
    } catch (err) {
      if (alive) recent.append(h("p", { class: "empty" }, `The jobs could not be loaded: ${err.message}`));
    }
  }

  // ---- Run now ----
  function openRun() {
    const error = h("p", { class: "form-error", role: "alert", testid: "run-error", hidden: true });
    const requestId = h("input", { id: "run-request-id", type: "text", testid: "run-request-id", value: newRequestId(), required: true, spellcheck: "false", "aria-describedby": "run-request-id-help" });
    // Inline sequences take their records with the request; the others read their source file.
    const inline = definition.sequences.filter((s) => s.source?.type === "inline");
    const inputs = inline.map((s) => {
      const error = h("p", { class: "form-error", testid: "run-input-error", hidden: true });
      // Typing again takes the error away: it was about what was there before.
      const area = h("textarea", {
        id: `run-input-${s.name}`, rows: 4, testid: "run-input", dataset: { sequence: s.name }, spellcheck: "false",
        placeholder: '[{"uid": "u1", "mail": "u1@example.org"}]',
        oninput: () => { error.hidden = true; area.removeAttribute("aria-invalid"); },
      });
      return { name: s.name, area, error };
    });
    const submit = h("button", { type: "submit", class: "btn btn--primary", testid: "run-submit" }, "Run now");
    // A dry run plans every sequence and writes nothing: the way to see what a run would do.
    const dryRun = h("input", {
      id: "run-dry-run", type: "checkbox", testid: "run-dry-run", "aria-describedby": "run-dry-run-help",
      onchange: () => { submit.textContent = dryRun.checked ? "Start dry run" : "Run now"; },
    });
    const form = h("form", { class: "dialog__form", novalidate: true },
      h("h2", { id: "run-title", class: "dialog__title" }, "Run ", definition.name),
      h("div", { class: "dialog__body" },
        h("div", { class: "field" }, h("label", { for: "run-request-id" }, "Request id"), requestId,
          h("p", { id: "run-request-id-help", class: "hint" }, "Sending the same request id again never starts a second job: keep the generated one, or use your change ticket's.")),
        inputs.map((i) => h("div", { class: "field" }, h("label", { for: `run-input-${i.name}` }, `Records for ${i.name} (a JSON list)`), i.area, i.error)),
        h("div", { class: "field field--check" }, dryRun, h("label", { for: "run-dry-run" }, "Dry run")),
        h("p", { id: "run-dry-run-help", class: "hint" }, "Plans every sequence against the target as it is and shows the changes and counts, and the thresholds they would reach. Nothing is ever written."),
        error),
      h("div", { class: "dialog__actions" },
        h("button", { type: "button", class: "btn btn--ghost", testid: "run-cancel", onclick: () => dialog.close() }, "Cancel"),
        submit),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const body = { request_id: requestId.value.trim(), definition_id: definition.id, inputs: {}, dry_run: dryRun.checked };
      let bad = false;
      for (const i of inputs) {
        i.error.hidden = true;
        i.area.removeAttribute("aria-invalid");
        try {
          body.inputs[i.name] = i.area.value.trim() ? JSON.parse(i.area.value) : [];
        } catch {
          i.error.textContent = "Not valid JSON: give a list of records, such as [{\"uid\": \"u1\"}].";
          i.error.hidden = false;
          i.area.setAttribute("aria-invalid", "true");
          bad = true;
        }
      }
      if (bad) return;
      submit.disabled = true;
      try {
        const submitted = await api.submit(body);
        dialog.close();
        // A request id used before opens the job it started, which may not be what the box
        // asked for now: say so, rather than let a real job pass for a dry run or the reverse.
        const started = await api.job(submitted.id).catch(() => null);
        if (started && Boolean(started.dry_run) !== body.dry_run) {
          flash(`Request id ${body.request_id} already started job ${shortId(submitted.id)}, which is ${started.dry_run ? "a dry run" : "not a dry run"}: nothing new was started. Use another request id.`);
        } else {
          flash(`${body.dry_run ? "Dry run" : "Job"} ${shortId(submitted.id)} of ${definition.name} requested.`, "notice");
        }
        navigate(`/jobs/${encodeURIComponent(submitted.id)}`);
      } catch (err) {
        error.textContent = `The job could not be requested: ${err.message}`;
        error.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
    replace(dialog, form);
    dialog.showModal();
    requestId.select();
  }

  async function load() {
    try {
      definition = await api.definition(definitionId);
      if (!alive) return;
      renderHead();
      renderBody();
      schedule.load(definition);
      loadRecent();
    } catch (err) {
      if (!alive) return;
      replace(body, h("p", { class: "card", testid: "definition-missing" },
        err.status === 404 ? "This definition does not exist (it may have been deleted). " : `The definition could not be loaded: ${err.message} `,
        h("a", { href: "#/definitions" }, "Back to the definitions.")));
    }
  }

  load();
  return () => {
    alive = false;
    schedule.stop();
    if (dialog.open) dialog.close();
  };
}
