// The sign-in page: an API key becomes an HttpOnly session cookie, never stored by the page.

import { api } from "../api.js";
import { h, replace } from "../dom.js";

export function mountSignIn(main, { onSignedIn }) {
  const error = h("p", { class: "form-error", role: "alert", testid: "sign-in-error", hidden: true });
  const input = h("input", {
    id: "api-key", name: "api_key", type: "password", required: true, autocomplete: "off",
    spellcheck: "false", testid: "api-key", "aria-describedby": "api-key-help",
  });
  const submit = h("button", { type: "submit", class: "btn btn--primary btn--block", testid: "sign-in" }, "Sign in");
  const form = h("form", { class: "signin__form", method: "post", action: "/console/session", novalidate: true },
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { id: "api-key-help", class: "hint" },
      "Ask an administrator for a key. It is sent once to open a session and is not kept in the browser."),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showError("Enter your API key.");
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    error.hidden = true;
    try {
      await api.signIn(key);
      const me = await api.me();
      input.value = "";
      onSignedIn(me);
    } catch (err) {
      showError(err.status === 401 || err.status === 403 ? "This API key is not valid. Check it and try again." : err.message);
      input.select();
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  });

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
  }

  replace(main, h("section", { class: "signin", "aria-labelledby": "signin-title", testid: "sign-in-page" },
    h("div", { class: "card signin__card" },
      h("h1", { id: "signin-title" }, "Sign in"),
      h("p", { class: "muted" }, "Track provisioning job instances, review thresholds and decide what gets written."),
      form,
    ),
  ));
  input.focus();
  return () => {};
}
