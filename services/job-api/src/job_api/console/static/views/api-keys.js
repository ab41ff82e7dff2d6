// API keys (admins): create one (its key is shown this once), list them, revoke one.

import { api } from "../api.js";
import { confirmDialog, flash, h, replace } from "../dom.js";
import { when } from "../format.js";

const ROLES = ["viewer", "operator", "admin"];

export function mountApiKeys(main, { me }) {
  let alive = true;
  const created = h("div", { testid: "created-key-slot" });
  const error = h("p", { class: "form-error", role: "alert", testid: "api-key-error", hidden: true });
  const name = h("input", { type: "text", id: "key-name", testid: "key-name", required: true, spellcheck: "false", placeholder: "ops-1" });
  const role = h("select", { id: "key-role", testid: "key-role" }, ROLES.map((r) => h("option", { value: r, selected: r === "viewer" }, r)));
  const form = h("form", { class: "toolbar", testid: "api-key-form", "aria-label": "Create an API key", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "key-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "key-role" }, "Role"), role),
    h("button", { type: "submit", class: "btn btn--primary", testid: "btn-create-key" }, "Create key"));
  const tbody = h("tbody", { testid: "api-keys-tbody" });
  replace(main,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "API keys"),
      h("p", { class: "muted" }, "Each key has a role. Only its hash is stored: a key is shown once, when it is created."))),
    created,
    h("section", { class: "card card--flush" }, form, h("div", { class: "card__pad" }, error),
      h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "api-keys-table" },
        h("caption", { class: "visually-hidden" }, "API keys"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Role"),
          h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Created by"), h("th", { scope: "col", class: "col-actions" }, "Actions"))),
        tbody))),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    name.removeAttribute("aria-invalid");
    try {
      const answer = await api.createApiKey(name.value.trim(), role.value);
      // The key lives only in this element: leaving the page forgets it.
      replace(created, h("section", { class: "key-once", role: "status", testid: "created-key" },
        h("p", {}, "Key ", h("strong", {}, answer.name), ` (${answer.role}) created. Copy it now: it is not shown again.`),
        h("code", { testid: "created-key-value" }, answer.key),
        h("div", {}, h("button", { type: "button", class: "btn btn--small btn--ghost", testid: "dismiss-key", onclick: () => replace(created) }, "I have copied it"))));
      name.value = "";
      await load();
    } catch (err) {
      error.textContent = `The key was not created: ${err.message}`;
      error.hidden = false;
      name.setAttribute("aria-invalid", "true");
      name.focus();
    }
  });

  async function revoke(key) {
    const ok = await confirmDialog({
      title: `Revoke the key ${key.name}?`,
      body: [h("p", {}, "Calls with this key are refused at once, and console sessions signed in with it end."),
        key.name === me.name ? h("p", { class: "error-text" }, "This is the key you are signed in with: you will be signed out.") : null],
      confirmLabel: "Revoke key",
    });
    if (!ok) return;
    try {
      await api.deleteApiKey(key.id);
      flash(`Key ${key.name} revoked.`, "notice");
    } catch (err) {
      flash(`The key was not revoked: ${err.message}`);
    }
    if (alive) await load();
  }

  async function load() {
    try {
      const data = await api.apiKeys();
      if (!alive) return;
      const items = data.items ?? [];
      replace(tbody, items.map((k) => h("tr", { testid: "api-key-row", dataset: { name: k.name, role: k.role } },
        h("td", {}, h("span", { class: "cell-title" }, k.name), k.name === me.name ? [" ", h("span", { class: "tag" }, "you")] : null),
        h("td", {}, h("span", { class: "role-tag", dataset: { role: k.role } }, k.role)),
        h("td", {}, when(k.created_at)),
        h("td", {}, k.created_by ?? "—"),
        h("td", { class: "col-actions" }, h("button", { type: "button", class: "btn btn--small btn--danger-ghost", testid: "btn-revoke", "aria-label": `Revoke ${k.name}`, onclick: () => revoke(k) }, "Revoke")),
      )));
    } catch (err) {
      if (!alive) return;
      replace(tbody, h("tr", {}, h("td", { colspan: 5, class: "empty", testid: "api-keys-error" }, `The keys could not be loaded: ${err.message}`)));
    }
  }

  load();
  return () => { alive = false; };
}
