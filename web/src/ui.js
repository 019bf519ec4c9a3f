// Shared UI pieces: page headers, error banners, loading and empty states, dialogs,
// confirmations, toasts and copy buttons.
import { h, replace, uid } from "./dom.js";
import { ApiError, hint } from "./api.js";

/** pageHeader is a page's title row with optional actions on the right. */
export function pageHeader(title, sub, ...actions) {
  return h("header.page-head", null,
    h("div", null, h("h1", { id: "page-title", tabIndex: -1 }, title), sub ? h("p.muted", null, sub) : null),
    h("div.actions", null, actions));
}

/** errorBanner says what went wrong and what to do; retry (optional) adds a Retry button. */
export function errorBanner(err, retry) {
  const msg = err instanceof ApiError || err?.message ? err.message : String(err);
  const extra = err instanceof ApiError ? hint(err) : "";
  return h("div.banner.error", { role: "alert" },
    h("strong", null, "Error: "), msg,
    extra && !msg.includes(extra) ? h("span", null, " ", extra) : null,
    err?.requestId ? h("span.muted.small", null, ` (request ${err.requestId})`) : null,
    retry ? h("button.link", { type: "button", onclick: retry }, "Retry") : null);
}

/** loading is a placeholder while data loads. */
export const loading = (what = "Loading") =>
  h("div.loading", { role: "status", "aria-live": "polite" }, h("span.spinner", { "aria-hidden": "true" }), `${what}…`);

/** empty is an empty state with a hint and an optional action. */
export const empty = (title, text, action) =>
  h("div.empty", null, h("p.empty-title", null, title), text ? h("p.muted", null, text) : null, action || null);

/** toast announces a short message in the live region. */
export function toast(message, kind = "ok") {
  const region = document.getElementById("toasts");
  if (!region) return;
  const t = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, message);
  region.append(t);
  while (region.childElementCount > 2) region.firstElementChild.remove();
  setTimeout(() => t.remove(), 4000);
}

/**
 * openDialog shows a modal <dialog> (native focus trapping and Escape) built by
 * build(close), which returns the dialog's body nodes. It resolves with the value passed
 * to close, or undefined when dismissed.
 */
export function openDialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const titleId = uid("dlg");
    const dlg = h(`dialog.dialog${wide ? ".wide" : ""}`, { "aria-labelledby": titleId });
    let value;
    const close = (v) => { value = v; dlg.close(); };
    dlg.addEventListener("close", () => { dlg.remove(); resolve(value); });
    dlg.append(
      h("div.dialog-head", null, h("h2", { id: titleId }, title),
        h("button.icon", { type: "button", "aria-label": "Close", onclick: () => close() }, "×")),
      ...[build(close)].flat());
    document.body.append(dlg);
    dlg.showModal();
    const first = dlg.querySelector("[autofocus], input, select, textarea, button.primary");
    first?.focus();
  });
}

/** confirmDialog asks a yes/no question; danger styles the confirm button red. */
export function confirmDialog(title, text, confirmLabel, { danger = true } = {}) {
  return openDialog(title, (close) => [
    h("p", null, text),
    h("div.dialog-actions", null,
      h("button", { type: "button", onclick: () => close(false) }, "Cancel"),
      h(`button.primary${danger ? ".danger" : ""}`, { type: "button", autofocus: true, onclick: () => close(true) }, confirmLabel)),
  ]).then(Boolean);
}

/**
 * formDialog runs a form in a dialog: submit(formData, form) may throw (the error is shown
 * in the dialog and the dialog stays open) or return a value that closes it.
 */
export function formDialog(title, fields, submitLabel, submit, opts) {
  return openDialog(title, (close) => {
    const err = h("div", { "aria-live": "assertive" });
    const btn = h("button.primary", { type: "submit" }, submitLabel);
    const form = h("form.form", {
      novalidate: false,
      onsubmit: async (e) => {
        e.preventDefault();
        btn.disabled = true;
        replace(err);
        try {
          close(await submit(new FormData(form), form));
        } catch (e2) {
          replace(err, errorBanner(e2));
        } finally {
          btn.disabled = false;
        }
      },
    }, fields, err, h("div.dialog-actions", null,
      h("button", { type: "button", onclick: () => close() }, "Cancel"), btn));
    return form;
  }, opts);
}

/** field is a labelled input; the control gets an id wired to the label (and hint). */
export function field(label, control, help) {
  const id = control.id || (control.id = uid("f"));
  const helpId = help ? `${id}-help` : null;
  if (helpId) control.setAttribute("aria-describedby", helpId);
  return h("div.field", null, h("label", { for: id }, label), control, help ? h("p.help", { id: helpId }, help) : null);
}

/** copyButton copies text to the clipboard and says so. */
export function copyButton(text, label = "Copy") {
  const btn = h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        const ta = h("textarea", { value: text, readOnly: true });
        document.body.append(ta);
        ta.select();
        document.execCommand("copy");
        ta.remove();
      }
      btn.textContent = "Copied";
      toast("Copied to the clipboard");
      setTimeout(() => (btn.textContent = label), 2000);
    },
  }, label);
  return btn;
}

/** badge renders a state as a colored pill. */
export const badge = (text, kind = text) => h(`span.badge.b-${kind}`, null, text);

/** table builds a table with a caption (screen readers) and header cells. */
export function table(caption, headers, rows, cls = "") {
  return h(`div.table-wrap${cls ? "." + cls : ""}`, null, h("table", null,
    h("caption.sr-only", null, caption),
    h("thead", null, h("tr", null, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", null, rows)));
}
