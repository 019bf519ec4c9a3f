// The sandbox detail page: overview (metadata, metrics charts, exposed ports) and tabs for
// the terminal (WebSocket PTY), files (browse, upload, download) and logs (SSE).
import { h, replace } from "../dom.js";
import { get } from "../api.js";
import { pageHeader, errorBanner, badge } from "../ui.js";
import { dateTime, ago, left, bytes, num } from "../format.js";
import { lineChart, gauge } from "../charts.js";
import { isLive, isPaused, samples, sampleMetrics, killSandbox, extendSandbox, pauseSandbox, resumeSandbox, forkSandbox, sandboxHref } from "../sandboxes-common.js";
import { filesPanel } from "./sandbox-files.js";
import { logsPanel } from "./sandbox-logs.js";
import { portsSection } from "./sandbox-ports.js";

const POLL_MS = 2500;
const TABS = [["overview", "Overview"], ["terminal", "Terminal"], ["files", "Files"], ["logs", "Logs"]];

export default async function sandbox(ctx) {
  const [id, tabParam] = ctx.params;
  let sb = await get(`/v1/sandboxes/${id}`, { signal: ctx.signal });
  const canWrite = ctx.can("sandboxes:write");
  const banner = h("div");
  const notice = h("div"); // what an action made (fork), kept across polls
  const actions = h("div.actions");
  const head = pageHeader(h("span", null, "Sandbox ", h("span.mono", null, id)), null, actions);
  const stateSlot = h("span");
  head.querySelector("h1").append(" ", stateSlot);

  const tabs = TABS.filter(([t]) => t !== "terminal" || canWrite);
  const tablist = h("div.tabs", { role: "tablist", "aria-label": "Sandbox views" });
  const panels = new Map();
  const built = new Set();
  for (const [t, label] of tabs) {
    const tab = h("button.tab", {
      type: "button", role: "tab", id: `tab-${t}`, "aria-controls": `panel-${t}`, "aria-selected": "false", tabIndex: -1,
      onclick: () => select(t, true),
      onkeydown: (e) => {
        const i = tabs.findIndex(([x]) => x === t);
        const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
        if (next === undefined) return;
        e.preventDefault();
        select(tabs[(next + tabs.length) % tabs.length][0], true);
        document.getElementById(`tab-${tabs[(next + tabs.length) % tabs.length][0]}`).focus();
      },
    }, label);
    tablist.append(tab);
    panels.set(t, h("section.panel", { role: "tabpanel", id: `panel-${t}`, "aria-labelledby": `tab-${t}`, hidden: true, tabIndex: 0 }));
  }

  replace(ctx.main, h("p.crumbs", null, h("a", { href: "#/sandboxes" }, "Sandboxes"), " / ", h("span.mono", null, id)),
    head, banner, notice, tablist, [...panels.values()]);

  const overview = buildOverview();
  let terminal = null;

  function select(t, user) {
    if (!panels.has(t)) t = "overview";
    for (const [x, p] of panels) {
      const on = x === t;
      p.hidden = !on;
      const tab = document.getElementById(`tab-${x}`);
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    if (user) history.replaceState(null, "", `#/sandboxes/${id}/${t}`);
    if (!built.has(t)) {
      built.add(t);
      const p = panels.get(t);
      if (t === "overview") replace(p, overview.el);
      if (t === "files") filesPanel(p, ctx, sb);
      if (t === "logs") logsPanel(p, ctx, sb);
      if (t === "terminal") {
        terminal = import("./sandbox-terminal.js").then((m) => m.terminalPanel(p, ctx, sb));
      }
    }
    if (t === "terminal" && terminal) terminal.then((term) => term?.focus());
  }

  function renderHead() {
    replace(stateSlot, badge(sb.state));
    replace(actions, canWrite ? headActions() : null);
  }

  // changed shows a sandbox the server answered and polls again (a resumed one is live).
  const changed = async (u) => { if (u) { sb = u; renderHead(); overview.update(); overview.ports.load(); await poll(); } };
  const busy = (fn) => async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    try { await fn(); } finally { b.disabled = false; }
  };

  function headActions() {
    const kill = h("button.danger", { type: "button", onclick: async () => { if (await killSandbox(sb)) { await poll(); } } }, "Kill");
    if (isPaused(sb)) {
      return [h("button.primary", { type: "button", onclick: busy(async () => changed(await resumeSandbox(sb))) }, "Resume"), kill];
    }
    if (!isLive(sb)) return null;
    const extend = h("button", { type: "button", onclick: async () => { const u = await extendSandbox(sb); if (u) { sb = u; renderHead(); overview.update(); } } }, "Extend");
    if (sb.state !== "running") return [extend, kill];
    return [
      h("button", { type: "button", onclick: busy(async () => changed(await pauseSandbox(sb))) }, "Pause"),
      h("button", { type: "button", onclick: async () => {
        const made = await forkSandbox(sb);
        if (made?.length) replace(notice, h("div.banner", { role: "status" }, `Forked into ${made.length}: `,
          made.map((f, i) => [i ? ", " : "", h("a.mono", { href: sandboxHref(f.id) }, f.id)])));
      } }, "Fork"),
      extend, kill,
    ];
  }

  function buildOverview() {
    const info = h("dl.info");
    const cpu = h("figure.chart-box");
    const mem = h("figure.chart-box");
    const disk = h("div");
    const ports = portsSection(ctx, () => sb);
    const el = h("div.overview", null,
      h("section.card.span2", { "aria-labelledby": "h-metrics" }, h("h2", { id: "h-metrics" }, "Metrics"),
        h("div.charts", null, cpu, mem), disk),
      h("section.card", { "aria-labelledby": "h-details" }, h("h2", { id: "h-details" }, "Details"), info),
      ports);
    const update = () => {
      const row = (k, v) => [h("dt", null, k), h("dd", null, v)];
      const L = sb.limits || {};
      replace(info,
        row("State", [badge(sb.state), sb.end_reason ? ` ${sb.end_reason}` : ""]),
        row("Template", h("a", { href: `#/templates/${encodeURIComponent(sb.template)}` }, sb.template)),
        row("Runtime", sb.runtime || "—"),
        row("Created", `${dateTime(sb.created_at)} (${ago(sb.created_at)} ago)`),
        isPaused(sb) ? row("Paused", `${sb.paused_at ? `${dateTime(sb.paused_at)} (${ago(sb.paused_at)} ago). ` : ""}Its memory and files are saved; nothing of it runs. Resume it to go on where it was.`)
          : row(isLive(sb) ? "Ends" : "Stopped", isLive(sb) ? `${dateTime(sb.ends_at)} (in ${left(sb.ends_at)})` : dateTime(sb.stopped_at)),
        row("Limits", `${L.cpu_cores || "default"} CPU · ${L.memory_mb ? L.memory_mb + " MiB" : "default"} memory · ${L.disk_mb ? L.disk_mb + " MiB" : "default"} disk · ${L.max_processes || "default"} processes`),
        row("At timeout", sb.lifecycle?.on_timeout === "pause" ? `pause${sb.lifecycle.auto_resume ? ", resumed by traffic" : ""}` : "kill"),
        row("Internet", sb.internet ? "allowed" : "blocked"),
        row("Environment", sb.env_keys?.length ? sb.env_keys.map((k) => h("span.chip", null, k)) : "—"),
        row("Metadata", Object.keys(sb.metadata || {}).length ? Object.entries(sb.metadata).map(([k, v]) => h("span.chip", null, `${k}=${v}`)) : "—"));
      const hist = samples(id);
      const last = hist[hist.length - 1];
      replace(cpu, h("figcaption", null, "CPU", last ? h("span.muted", null, ` ${num(last.cpu)}% of ${last.cpuCount || "?"} cores`) : null),
        lineChart("CPU use in percent over the last minutes", hist.map((p) => ({ t: p.t, v: p.cpu })), { yMax: 100, fmt: (v) => `${v}%`, cls: "cpu" }));
      replace(mem, h("figcaption", null, "Memory", last ? h("span.muted", null, ` ${bytes(last.mem)} of ${bytes(last.memTotal)}`) : null),
        lineChart("Memory use over the last minutes", hist.map((p) => ({ t: p.t, v: p.mem / 1048576 })), { fmt: (v) => `${num(v, 0)} MiB`, cls: "mem" }));
      replace(disk, last && last.diskTotal ? gauge("Disk", last.disk, last.diskTotal, bytes) : null);
      if (isPaused(sb)) replace(disk, h("p.muted", null, "The sandbox is paused: no samples until it is resumed."));
      else if (!isLive(sb)) replace(disk, h("p.muted", null, "The sandbox has ended: no more samples."));
    };
    return { el, update, ports };
  }

  let timer;
  async function poll() {
    clearTimeout(timer);
    try {
      sb = await get(`/v1/sandboxes/${id}`, { signal: ctx.signal });
      if (isLive(sb)) await sampleMetrics(id, ctx.signal).catch(() => {});
      replace(banner);
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(banner, errorBanner(err));
    }
    renderHead();
    overview.update();
    if (!ctx.signal.aborted && (isLive(sb) || sb.state === "starting")) timer = setTimeout(poll, POLL_MS);
  }
  ctx.cleanup(() => clearTimeout(timer));

  renderHead();
  overview.update();
  select(panels.has(tabParam) ? tabParam : "overview", false);
  poll();
}
