// A template build's page: its state, each step's result (cached or run, exit code,
// duration) and its log, streamed as Server-Sent Events while the build runs
// (GET /v1/templates/{id}/builds/{build}/logs, "log" events then "end" with the build).
import { h, replace } from "../dom.js";
import { get } from "../api.js";
import { pageHeader, badge, table, errorBanner, empty } from "../ui.js";
import { dateTime, duration } from "../format.js";

const MAX_LINES = 5000;

/** isRunning says whether a build has not ended yet. */
export const isRunning = (b) => b.state === "waiting" || b.state === "building";

/** buildBadge renders a build's state in the console's state colours. */
export const buildBadge = (state) =>
  badge(state, { ready: "running", building: "starting", waiting: "paused", error: "error" }[state] || "stopped");

/** buildHref is the hash route of a build's page. */
export const buildHref = (tpl, id) => `#/templates/${encodeURIComponent(tpl)}/builds/${encodeURIComponent(id)}`;

export default async function templateBuild(ctx) {
  const tpl = decodeURIComponent(ctx.params[0]);
  const id = decodeURIComponent(ctx.params[1]);
  const base = `/v1/templates/${encodeURIComponent(tpl)}/builds/${encodeURIComponent(id)}`;
  const b = await get(base, { signal: ctx.signal });
  const stateSlot = h("span");
  const head = pageHeader(h("span", null, "Build ", h("span.mono", null, id)), null);
  head.querySelector("h1").append(" ", stateSlot);
  const summary = h("div");
  const steps = h("div");
  const status = h("span.muted", { role: "status" }, "Connecting…");
  const follow = h("input", { type: "checkbox", checked: true });
  const list = h("ol.logs", { role: "log", "aria-label": "Build log", tabIndex: 0 });
  const banner = h("div");
  const placeholder = empty("No log lines yet.", "Lines appear here as the build writes them.");
  replace(ctx.main,
    h("p.crumbs", null, h("a", { href: "#/templates" }, "Templates"), " / ",
      h("a.mono", { href: `#/templates/${encodeURIComponent(tpl)}` }, tpl), " / ", h("span.mono", null, id)),
    head, summary,
    h("section.card", { "aria-labelledby": "h-steps" }, h("h2", { id: "h-steps" }, "Steps"), steps),
    h("section", { "aria-labelledby": "h-log" }, h("h2", { id: "h-log" }, "Log"),
      h("div.term-bar", null, status, h("label.check", null, follow, "Follow new lines")), banner, placeholder, list));

  function show(b) {
    replace(stateSlot, buildBadge(b.state));
    const row = (k, v) => [h("dt", null, k), h("dd", null, v)];
    replace(summary, h("section.card", { "aria-labelledby": "h-sum" }, h("h2.sr-only", { id: "h-sum" }, "Summary"), h("dl.info", null,
      row("State", buildBadge(b.state)),
      row("Started", dateTime(b.created_at)),
      row("Took", b.finished_at ? duration(Date.parse(b.finished_at) - Date.parse(b.created_at)) : "still running"),
      b.reason ? row("Why it failed", h("pre.reason", null, b.reason)) : null)));
    replace(steps, b.steps.length ? table("Steps", ["Step", "Result", "Exit code", "Took", "Layer"], b.steps.map((s) =>
      h("tr", null,
        h("th", { scope: "row" }, String(s.index + 1)),
        h("td", null, s.cached ? badge("cached", "role") : badge("ran", "running")),
        h("td.num", null, s.cached ? "—" : String(s.exit_code)),
        h("td.num", null, s.cached ? "—" : `${(s.duration_ms / 1000).toFixed(1)} s`),
        h("td.mono", null, s.key.slice(0, 12)))))
      : h("p.muted", null, isRunning(b) ? "No step has finished yet." : "No step finished."));
  }
  show(b);

  let offset = 0;
  let es = null;
  let retry;
  function add(line) {
    if (line.offset < offset) return; // already shown (a reconnect starts at offset)
    offset = line.offset + 1;
    placeholder.remove();
    list.append(h("li", null,
      h("time.muted", { datetime: line.time }, new Date(line.time).toLocaleTimeString()),
      h(`span.level.l-${(line.level || "info").toLowerCase()}`, null, line.level || "info"),
      h("span.msg", null, line.message)));
    while (list.childElementCount > MAX_LINES) list.firstElementChild.remove();
    if (follow.checked) list.scrollTop = list.scrollHeight;
  }
  function open() {
    clearTimeout(retry);
    replace(banner);
    let ended = false;
    es = new EventSource(`${base}/logs?offset=${offset}`);
    es.onopen = () => { status.textContent = isRunning(b) ? "Streaming: new lines appear as the build writes them" : "Loading the log"; };
    es.addEventListener("log", (e) => { try { add(JSON.parse(e.data)); } catch { /* malformed line */ } });
    es.addEventListener("end", (e) => {
      ended = true;
      es.close();
      try { show(JSON.parse(e.data)); } catch { /* keep what is shown */ }
      status.textContent = "The build has ended: this is its whole log";
    });
    es.addEventListener("error", (e) => {
      es.close();
      if (ended) return;
      if (e.data) { // the server's error event: the build is gone or not ours
        let msg = "The log cannot be read.";
        try { msg = JSON.parse(e.data).message || msg; } catch { /* not JSON */ }
        status.textContent = "Stopped";
        replace(banner, errorBanner(new Error(msg)));
        return;
      }
      // The connection dropped: go on from the last line seen, after a pause.
      status.textContent = "Disconnected";
      replace(banner, errorBanner(new Error("The log stream stopped. It reconnects in a few seconds; if it keeps failing, check that the build still exists and reload."), open));
      retry = setTimeout(open, 4000);
    });
  }
  ctx.cleanup(() => { clearTimeout(retry); es?.close(); });
  open();
}
