// A tiny element builder: text is always set as text, so nothing from the API becomes markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let flashSeq = 0;
// A message at the top of the page; errors stay until dismissed, notices fade.
export function flash(message, kind = "error") {
  const area = document.querySelector("[data-testid=flash-area]");
  // One notice at a time: the newest says where things stand; errors stay until dismissed.
  if (kind !== "error") area.querySelectorAll(".flash--notice").forEach((old) => old.remove());
  const id = `flash-${++flashSeq}`;
  const close = h("button", { type: "button", class: "flash__close", "aria-label": "Dismiss", onclick: () => item.remove() }, "×");
  const item = h("div", {
    id, class: `flash flash--${kind}`, role: kind === "error" ? "alert" : "status",
    testid: kind === "error" ? "flash-error" : "flash-notice",
  }, h("span", { class: "flash__text" }, message), close);
  area.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 6000);
  return item;
}

export function clearFlash() {
  document.querySelector("[data-testid=flash-area]")?.replaceChildren();
}

// The shared <dialog>: resolves true when the person confirms.
export function confirmDialog({ title, body, confirmLabel = "Confirm", danger = true }) {
  const dialog = document.querySelector("[data-testid=confirm-dialog]");
  replace(dialog.querySelector(".dialog__title"), title);
  replace(dialog.querySelector(".dialog__body"), body);
  const yes = dialog.querySelector("[data-testid=confirm-yes]");
  yes.textContent = confirmLabel;
  yes.className = `btn ${danger ? "btn--danger" : "btn--primary"}`;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
    dialog.querySelector("[data-testid=confirm-no]").focus();
  });
}
