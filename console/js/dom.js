// Building DOM without innerHTML: every text goes in as text, so nothing from an API is ever HTML.

/** h("tag.class#id", {attributes, on: {event: fn}}, ...children) */
export function h(spec, props = {}, ...children) {
  const [tagAndClasses, id] = spec.split("#");
  const [tag, ...classes] = tagAndClasses.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (id) el.id = id;
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
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

/** Replace an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let noticeTimer;
/** A short message in the live region (screen readers announce it). */
export function notice(text, kind = "info") {
  const el = document.getElementById("notice");
  fill(el, text ? h(`p.notice.${kind}`, {}, text) : "");
  clearTimeout(noticeTimer);
  if (text && kind !== "error" && kind !== "warning") noticeTimer = setTimeout(() => fill(el), 6000);
}

/** The notice after a create, update or delete: ``text`` and each of the answer's ``warnings`` (the
 * change was made; a fallback not open to every caller, a model others fall back to deleted, ...),
 * which stay until the next notice. */
export function changeNotice(text, answer) {
  const warnings = (answer && answer.warnings) || [];
  if (!warnings.length) return notice(text);
  notice([text, ...warnings.map((warning) => `Warning: ${warning.message}`)].join(" "), "warning");
}

/** A labelled form control: returns {row, input}. */
export function field(label, input, hint) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${Math.random().toString(36).slice(2, 7)}`;
  input.id = id;
  const error = h("p.field-error", { id: `${id}-error`, hidden: true });
  const hintEl = hint ? h("p.hint", { id: `${id}-hint` }, hint) : null;
  input.setAttribute("aria-describedby", [hintEl ? hintEl.id : "", error.id].join(" ").trim());
  const row = h("div.field", {}, h("label", { for: id }, label), input, hintEl, error);
  return { row, input, error };
}

/** Show (or clear with "") an error under a field created by field(). */
export function setFieldError(f, message) {
  f.error.hidden = !message;
  f.error.textContent = message || "";
  if (message) f.input.setAttribute("aria-invalid", "true");
  else f.input.removeAttribute("aria-invalid");
}

/** A confirmation dialog; resolves true when the user confirms. */
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h("dialog.confirm", { "aria-labelledby": "confirm-title" },
      h("h2#confirm-title", {}, title), h("p", {}, text),
      h("form", { method: "dialog" },
        h("button", { value: "cancel", type: "submit" }, "Cancel"),
        h("button.danger", { value: "ok", type: "submit" }, confirmLabel)));
    dialog.addEventListener("close", () => { resolve(dialog.returnValue === "ok"); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function formatTime(seconds) {
  if (!seconds) return "—";
  return new Date(seconds * 1000).toLocaleString();
}

export function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A copy button for a text value. */
export function copyButton(getText, label = "Copy") {
  const button = h("button.small", { type: "button" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(getText());
      notice("Copied to the clipboard.");
    } catch {
      notice("The browser did not allow copying; select the text and copy it yourself.", "error");
    }
  });
  return button;
}
