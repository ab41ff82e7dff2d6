// Create or edit a job definition (admins); the API's 422 errors are shown each at its field.

import { api } from "../api.js";
import { flash, h, replace } from "../dom.js";
import { can } from "../format.js";

const ACTIONS = ["create", "update", "delete"];
const SOURCE_TYPES = ["csv", "jsonl", "inline"];

function input(loc, value, attrs = {}) {
  return h("input", { type: "text", value: value ?? "", spellcheck: "false", dataset: { loc }, ...attrs });
}

// Each field and group carries data-loc, the path the API names in a 422 (without "body").
function field(id, label, control, loc, hint) {
  control.id = id;
  return h("div", { class: "field form-field", dataset: { loc } }, h("label", { for: id }, label), control,
    hint ? h("p", { class: "hint hint--tight" }, hint) : null);
}

// A number as typed: the server says what is wrong with it, at its field.
function numberOrText(raw) {
  const text = raw.trim();
  if (!text) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

export function mountDefinitionForm(main, { me, navigate, definitionId }) {
  let alive = true;
  let original = null;
  const editing = definitionId !== null;
  const formError = h("p", { class: "form-error", role: "alert", testid: "definition-form-error", hidden: true });
  const sequencesSlot = h("div", { testid: "sequence-fields", dataset: { loc: "sequences" } });
  // Disabled until the stored definition is in the form: saving before would send an empty one.
  const submit = h("button", { type: "submit", class: "btn btn--primary", testid: "definition-save", disabled: editing }, editing ? "Save a new version" : "Create definition");
  const top = { id: input("id", "", { testid: "definition-id-input", disabled: editing }), name: input("name", "", { testid: "definition-name-input" }), description: input("description", "", { testid: "definition-description-input" }) };
  let sequences = [];
  // When the definition runs by itself: never, on a cron expression in a time zone, or every N minutes.
  const schedule = {
    kind: h("select", { testid: "schedule-kind", dataset: { loc: "schedule" }, onchange: () => showScheduleFields() },
      h("option", { value: "" }, "only when a job is requested"),
      h("option", { value: "cron" }, "on a cron schedule"),
      h("option", { value: "interval" }, "every N minutes")),
    cron: input("schedule.cron", "", { testid: "schedule-cron", placeholder: "*/30 * * * *" }),
    timezone: input("schedule.timezone", "UTC", { testid: "schedule-timezone-input", placeholder: "Europe/Paris" }),
    interval: input("schedule.interval_minutes", "", { testid: "schedule-interval", inputmode: "numeric", placeholder: "30" }),
  };
  const cronFields = h("div", { class: "form-grid" },
    field("def-schedule-cron", "Cron expression", schedule.cron, "schedule.cron", "Five fields: minute hour day month weekday."),
    field("def-schedule-timezone", "Time zone", schedule.timezone, "schedule.timezone", "An IANA name, such as Europe/Paris: the cron expression is read in it."));
  const intervalFields = h("div", { class: "form-grid" },
    field("def-schedule-interval", "Every (minutes)", schedule.interval, "schedule.interval_minutes", "Counted from 1970-01-01T00:00Z, so every replica fires on the same instants."));

  // Who is told when a job stops: rows of name, webhook URL and email. A webhook's secret is
  // configured for the name in the notifier's environment, never here.
  let recipients = [];
  const recipientsSlot = h("div", { testid: "recipient-fields", dataset: { loc: "recipients" } });
  const STOPS = [["threshold", "a sequence stops at a threshold"], ["failed", "the job fails"], ["completed", "the job completes"]];
  const notifyOn = Object.fromEntries(STOPS.map(([k]) => [k, h("input", { type: "checkbox", id: `def-notify-${k}`, testid: `notify-on-${k}`, checked: k !== "completed" })]));

  function recipientFields(r) {
    return {
      name: input("recipients.name", r.name, { testid: "recipient-name" }),
      webhook: input("recipients.webhook_url", r.webhook_url, { testid: "recipient-webhook", placeholder: "https://hooks.example.com/provisioning" }),
      email: input("recipients.email", r.email, { testid: "recipient-email", placeholder: "iam-team@example.com" }),
    };
  }

  function renderRecipients() {
    replace(recipientsSlot, recipients.length ? recipients.map((f, i) => {
      const base = `recipients.${i}`;
      f.name.dataset.loc = `${base}.name`;
      f.webhook.dataset.loc = `${base}.webhook_url`;
      f.email.dataset.loc = `${base}.email`;
      const id = (what) => `recipient-${i}-${what}`;
      return h("div", { class: "form-grid form-grid--3 form-field recipient-row", testid: "recipient-row", dataset: { loc: base } },
        field(id("name"), `Recipient ${i + 1}: name`, f.name, `${base}.name`),
        field(id("webhook"), "Webhook URL", f.webhook, `${base}.webhook_url`),
        h("div", {}, field(id("email"), "Email", f.email, `${base}.email`),
          h("button", { type: "button", class: "btn btn--small btn--danger-ghost", testid: "remove-recipient", onclick: () => { recipients.splice(i, 1); renderRecipients(); } }, "Remove this recipient")));
    }) : h("p", { class: "hint" }, "Nobody is told when a job stops."));
  }

  function showScheduleFields() {
    cronFields.hidden = schedule.kind.value !== "cron";
    intervalFields.hidden = schedule.kind.value !== "interval";
  }

  const form = h("form", { class: "card definition-form", novalidate: true, testid: "definition-form", dataset: { loc: "" } },
    formError,
    h("div", { class: "form-grid" },
      field("def-id", "Id", top.id, "id", "Letters, digits, '_', '.', '-'; it cannot change later."),
      field("def-name", "Name", top.name, "name"),
      field("def-description", "Description", top.description, "description")),
    h("h2", {}, "Sequences"),
    h("p", { class: "hint" }, "They run in this order. Every sequence needs at least one threshold."),
    sequencesSlot,
    h("fieldset", { class: "sequence-fields", testid: "schedule-fieldset", dataset: { loc: "schedule" } },
      h("legend", {}, "Schedule"),
      field("def-schedule-kind", "Runs", schedule.kind, "schedule", "A firing while a job of this definition is unfinished is skipped, and says why."),
      cronFields, intervalFields),
    h("fieldset", { class: "sequence-fields", testid: "recipients-fieldset", dataset: { loc: "notify_on" } },
      h("legend", {}, "Notifications"),
      h("p", { class: "hint" }, "Each recipient is told by webhook (signed with the secret configured for its name in PROVISIONING_WEBHOOK_SECRETS), by email, or both."),
      recipientsSlot,
      h("button", { type: "button", class: "btn btn--small btn--ghost", testid: "add-recipient", onclick: () => { recipients.push(recipientFields({})); renderRecipients(); } }, "Add a recipient"),
      h("div", { class: "field--inline notify-on" }, h("span", { class: "label" }, "Tell them when"),
        STOPS.map(([k, label]) => h("span", { class: "field field--check" }, notifyOn[k], h("label", { for: `def-notify-${k}` }, label))))),
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn btn--ghost", testid: "add-sequence", onclick: () => { sequences.push(sequenceFields({}, sequences.length)); renderSequences(); } }, "Add a sequence"),
      h("div", { class: "toolbar__spacer" }),
      h("a", { class: "btn btn--ghost", href: editing ? `#/definitions/${encodeURIComponent(definitionId)}` : "#/definitions" }, "Cancel"),
      submit),
  );
  replace(main,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("a", { href: "#/definitions" }, "Definitions"), h("span", { "aria-hidden": "true" }, " / "),
      h("span", { "aria-current": "page" }, editing ? `Edit ${definitionId}` : "New")),
    h("div", { class: "page-head" }, h("h1", {}, editing ? `Edit ${definitionId}` : "New definition")),
    can(me, "manage_definitions") ? form : h("p", { class: "card", testid: "not-allowed" }, "Your role does not allow changing definitions."),
  );

  function sequenceFields(s, i) {
    const base = `sequences.${i}`;
    const f = {
      original: s,
      name: input(`${base}.name`, s.name, { testid: "seq-name" }),
      sourceType: h("select", { testid: "seq-source-type", dataset: { loc: `${base}.source.type` } },
        SOURCE_TYPES.map((t) => h("option", { value: t, selected: t === (s.source?.type ?? "csv") }, t))),
      path: input(`${base}.source.path`, s.source?.path, { testid: "seq-source-path" }),
      collection: input(`${base}.target.collection`, s.target?.collection, { testid: "seq-target-collection" }),
      key: input(`${base}.key`, s.key, { testid: "seq-key" }),
      mapping: h("textarea", { rows: 3, spellcheck: "false", testid: "seq-mapping", dataset: { loc: `${base}.mapping` } },
        s.mapping ? Object.entries(s.mapping).map(([a, v]) => `${a} = ${v}`).join("\n") : ""),
      deleteMissing: h("input", { type: "checkbox", testid: "seq-delete-missing", checked: Boolean(s.delete_missing), dataset: { loc: `${base}.delete_missing` } }),
      limits: Object.fromEntries(ACTIONS.map((a) => [a, {
        count: input(`${base}.thresholds.${a}.count`, s.thresholds?.[a]?.count, { testid: `seq-${a}-count`, inputmode: "numeric" }),
        percent: input(`${base}.thresholds.${a}.percent`, s.thresholds?.[a]?.percent, { testid: `seq-${a}-percent`, inputmode: "decimal" }),
      }])),
    };
    return f;
  }

  function renderSequences() {
    replace(sequencesSlot, sequences.map((f, i) => {
      const base = `sequences.${i}`;
      // Locations follow the position, so a removed sequence renumbers the ones after it.
      const controls = [f.name, f.sourceType, f.path, f.collection, f.key, f.mapping, f.deleteMissing,
        ...ACTIONS.flatMap((a) => [f.limits[a].count, f.limits[a].percent])];
      for (const c of controls) c.dataset.loc = c.dataset.loc.replace(/^sequences\.\d+/, base);
      const id = (what) => `seq-${i}-${what}`;
      return h("fieldset", { class: "sequence-fields", testid: "sequence-fieldset", dataset: { loc: base } },
        h("legend", {}, `Sequence ${i + 1}`),
        h("div", { class: "form-grid" },
          field(id("name"), "Name", f.name, `${base}.name`),
          field(id("key"), "Key", f.key, `${base}.key`, "The target attribute that identifies a record."),
          h("div", { class: "field form-field", dataset: { loc: `${base}.source` } },
            h("label", { for: id("source-type") }, "Source"),
            h("div", { class: "field--inline" }, Object.assign(f.sourceType, { id: id("source-type") }),
              Object.assign(f.path, { id: id("source-path"), placeholder: "path in the data folder", "aria-label": "Source path" }))),
          field(id("collection"), "Target collection", f.collection, `${base}.target`),
        ),
        field(id("mapping"), "Mapping", f.mapping, `${base}.mapping`, "One line per attribute: target attribute = source field. Empty: the source fields as they are."),
        h("div", { class: "field field--check form-field", dataset: { loc: `${base}.delete_missing` } }, Object.assign(f.deleteMissing, { id: id("delete-missing") }),
          h("label", { for: id("delete-missing") }, "Delete target records the source no longer has")),
        h("div", { class: "form-field thresholds-fields", dataset: { loc: `${base}.thresholds` } },
          h("span", { class: "label" }, "Thresholds: stop for an operator when a sequence plans at least"),
          h("div", { class: "form-grid form-grid--3" }, ACTIONS.map((a) => h("div", { class: "form-field", dataset: { loc: `${base}.thresholds.${a}` } },
            h("span", { class: "label" }, a),
            h("div", { class: "field--inline" },
              Object.assign(f.limits[a].count, { id: id(`${a}-count`), "aria-label": `${a} threshold count`, placeholder: "count" }),
              Object.assign(f.limits[a].percent, { id: id(`${a}-percent`), "aria-label": `${a} threshold percent`, placeholder: "%" })))))),
        sequences.length > 1 ? h("button", { type: "button", class: "btn btn--small btn--danger-ghost", testid: "remove-sequence", onclick: () => { sequences.splice(i, 1); renderSequences(); } }, "Remove this sequence") : null,
      );
    }));
  }

  function clearErrors() {
    formError.hidden = true;
    for (const el of form.querySelectorAll(".field-error")) el.remove();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  // The deepest element of the form the API's location names; segments the form has no
  // element for (a source's type tag, say) are skipped.
  function elementAt(loc) {
    let path = [];
    for (const part of loc) {
      const next = [...path, String(part)];
      if (form.querySelector(`[data-loc="${CSS.escape(next.join("."))}"]`)) path = next;
    }
    return { path, el: path.length ? form.querySelector(`[data-loc="${CSS.escape(path.join("."))}"]`) : null };
  }

  function showFieldError(loc, message) {
    let { path, el } = elementAt(loc);
    let text = message.replace(/^Value error, /, "");
    // A rule across fields names the field it is about first ("key: ...", "thresholds.delete: ...").
    const named = /^([a-z_.]+): (.*)$/s.exec(text);
    if (named) {
      const inner = elementAt([...path, ...named[1].split(".")]);
      if (inner.path.length > path.length) ({ path, el } = inner);
      text = named[2];
    }
    if (!el) el = form;
    const holder = el.classList.contains("form-field") || el === form || el.tagName === "FIELDSET" || el === sequencesSlot ? el : el.closest(".form-field") ?? el.parentElement;
    const control = el.matches("input, select, textarea") ? el : holder.querySelector(":scope > input, :scope > select, :scope > textarea");
    control?.setAttribute("aria-invalid", "true");
    const error = h("p", { class: "field-error", testid: "field-error", dataset: { loc: path.join(".") } }, text);
    if (holder === form) form.prepend(error);
    else if (holder.tagName === "FIELDSET") holder.querySelector("legend").after(error);
    else holder.append(error);
  }

  function collect() {
    const problems = [];
    const body = { ...(original ?? {}) };
    delete body.version;
    body.id = editing ? original.id : top.id.value.trim();
    body.name = top.name.value.trim();
    const description = top.description.value.trim();
    if (description) body.description = description;
    else delete body.description;
    body.sequences = sequences.map((f, i) => {
      const s = { ...f.original };
      s.name = f.name.value.trim();
      const type = f.sourceType.value;
      s.source = type === "inline" ? { type } : { ...(f.original.source?.type === type ? f.original.source : {}), type, path: f.path.value.trim() };
      s.target = { ...(f.original.target ?? { type: "mongo" }), collection: f.collection.value.trim() };
      s.key = f.key.value.trim();
      const lines = f.mapping.value.split("\n").map((l) => l.trim()).filter(Boolean);
      if (lines.length) {
        s.mapping = {};
        lines.forEach((line, n) => {
          const m = /^([^=]+?)\s*=\s*(.+)$/.exec(line);
          if (m) s.mapping[m[1]] = m[2];
          else problems.push([["sequences", i, "mapping"], `line ${n + 1}: write it as target attribute = source field`]);
        });
      } else {
        delete s.mapping;
      }
      s.delete_missing = f.deleteMissing.checked;
      s.thresholds = {};
      for (const a of ACTIONS) {
        const count = numberOrText(f.limits[a].count.value);
        const percent = numberOrText(f.limits[a].percent.value);
        if (count !== undefined || percent !== undefined) {
          s.thresholds[a] = {};
          if (count !== undefined) s.thresholds[a].count = count;
          if (percent !== undefined) s.thresholds[a].percent = percent;
        }
      }
      return s;
    });
    const numberOfMinutes = numberOrText(schedule.interval.value);
    if (schedule.kind.value === "cron") body.schedule = { cron: schedule.cron.value.trim(), timezone: schedule.timezone.value.trim() || "UTC" };
    else if (schedule.kind.value === "interval") body.schedule = { interval_minutes: numberOfMinutes ?? null };
    else body.schedule = null;
    body.recipients = recipients.map((f) => {
      const r = { name: f.name.value.trim() };
      if (f.webhook.value.trim()) r.webhook_url = f.webhook.value.trim();
      if (f.email.value.trim()) r.email = f.email.value.trim();
      return r;
    });
    body.notify_on = STOPS.map(([k]) => k).filter((k) => notifyOn[k].checked);
    return { body, problems };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const { body, problems } = collect();
    if (problems.length) {
      problems.forEach(([loc, msg]) => showFieldError(loc, msg));
      form.querySelector("[aria-invalid=true]")?.focus();
      return;
    }
    submit.disabled = true;
    try {
      const saved = editing
        ? await api.replaceDefinition(definitionId, body, original.version)
        : await api.createDefinition(body);
      flash(`Definition ${saved.id} saved at version ${saved.version}.`, "notice");
      navigate(`/definitions/${encodeURIComponent(saved.id)}`);
    } catch (err) {
      const detail = err.body?.detail;
      if (err.status === 422 && Array.isArray(detail)) {
        for (const e of detail) showFieldError((e.loc ?? []).filter((p) => p !== "body"), String(e.msg));
        formError.textContent = `The definition was not saved: ${detail.length} problem${detail.length === 1 ? "" : "s"}, shown at ${detail.length === 1 ? "its field" : "their fields"}.`;
      } else if (err.status === 409 && editing) {
        formError.textContent = `The definition was not saved: ${err.message}. Reload it to see the other change.`;
      } else {
        formError.textContent = `The definition was not saved: ${err.message}`;
      }
      formError.hidden = false;
      (form.querySelector("[aria-invalid=true]") ?? formError).focus?.();
    } finally {
      submit.disabled = false;
    }
  });

  async function load() {
    if (editing) {
      try {
        original = await api.definition(definitionId);
      } catch (err) {
        if (alive) replace(form, h("p", { testid: "definition-missing" }, `The definition could not be loaded: ${err.message}`));
        return;
      }
      if (!alive) return;
      top.id.value = original.id;
      top.name.value = original.name;
      top.description.value = original.description ?? "";
      sequences = original.sequences.map((s, i) => sequenceFields(s, i));
      const kept = original.schedule;
      schedule.kind.value = kept?.cron ? "cron" : kept?.interval_minutes ? "interval" : "";
      schedule.cron.value = kept?.cron ?? "";
      schedule.timezone.value = kept?.timezone ?? "UTC";
      schedule.interval.value = kept?.interval_minutes ?? "";
      recipients = (original.recipients ?? []).map(recipientFields);
      const on = new Set(original.notify_on ?? ["threshold", "failed"]);
      for (const [k] of STOPS) notifyOn[k].checked = on.has(k);
    } else {
      sequences = [sequenceFields({ source: { type: "csv" }, target: { type: "mongo" } }, 0)];
    }
    renderSequences();
    showScheduleFields();
    renderRecipients();
    submit.disabled = false;
    (editing ? top.name : top.id).focus();
  }

  load();
  return () => { alive = false; };
}
