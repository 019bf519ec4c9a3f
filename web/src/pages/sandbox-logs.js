// The logs tab: the sandbox's logs streamed as Server-Sent Events
// (GET /v1/sandboxes/{id}/logs?follow=true), appended as they come.
import { h, replace } from "../dom.js";
import { errorBanner, empty } from "../ui.js";

const MAX_LINES = 5000;

/** logsPanel fills panel with a live log view of the sandbox. */
export function logsPanel(panel, ctx, sb) {
  const status = h("span.muted", { role: "status" }, "Connecting…");
  const follow = h("input", { type: "checkbox", checked: true });
  const list = h("ol.logs", { role: "log", "aria-label": "Sandbox logs", tabIndex: 0 });
  const banner = h("div");
  const placeholder = empty("No log lines yet.", "Lines appear here as the sandbox writes them.");
  replace(panel, h("div.term-bar", null, status,
    h("label.check", null, follow, "Follow new lines"),
    h("button", { type: "button", onclick: () => { list.replaceChildren(); } }, "Clear")), banner, placeholder, list);

  let es = null;
  let last = ""; // timestamp of the last line, to resume without repeats
  const seen = new Set();
  let retry;

  function add(line) {
    const key = `${line.timestamp}|${line.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > MAX_LINES * 2) seen.clear();
    placeholder.remove();
    last = line.timestamp || last;
    const fields = Object.entries(line.fields || {}).map(([k, v]) => h("span.field", null, `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`));
    list.append(h("li", null,
      h("time.muted", { datetime: line.timestamp }, new Date(line.timestamp).toLocaleTimeString()),
      h(`span.level.l-${(line.level || "info").toLowerCase()}`, null, line.level || "info"),
      h("span.msg", null, line.message), fields));
    while (list.childElementCount > MAX_LINES) list.firstElementChild.remove();
    if (follow.checked) list.scrollTop = list.scrollHeight;
  }

  function open() {
    clearTimeout(retry);
    replace(banner);
    const since = last ? `&since=${encodeURIComponent(last)}` : "";
    es = new EventSource(`/v1/sandboxes/${sb.id}/logs?follow=true${since}`);
    es.onopen = () => { status.textContent = "Streaming: new lines appear as they are written"; };
    es.addEventListener("log", (e) => { try { add(JSON.parse(e.data)); } catch { /* malformed line */ } });
    es.addEventListener("end", () => { es.close(); status.textContent = "The sandbox has ended: no more lines will come"; });
    es.onerror = () => {
      // The browser would reconnect with the same URL and repeat old lines: reconnect by
      // hand, from the last line seen, after a pause.
      es.close();
      status.textContent = "Disconnected";
      replace(banner, errorBanner(new Error("The log stream stopped. It reconnects in a few seconds; if it keeps failing, check that the sandbox exists and reload."), open));
      retry = setTimeout(open, 4000);
    };
  }
  ctx.cleanup(() => { clearTimeout(retry); es?.close(); });
  open();
}
