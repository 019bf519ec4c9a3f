// The sandboxes page: a live list (polled every 2.5 s) with state, template, runtime, age,
// time left and CPU/memory sparklines; filter and search; create, extend, pause, resume,
// fork and kill.
import { h, replace } from "../dom.js";
import { get, qs } from "../api.js";
import { pageHeader, errorBanner, loading, empty, badge, field } from "../ui.js";
import { ago, left, bytes, num } from "../format.js";
import { sparkline } from "../charts.js";
import { isLive, isPaused, sandboxHref, samples, sampleMetrics, forget, killSandbox, extendSandbox, createSandbox,
  pauseSandbox, resumeSandbox, forkSandbox } from "../sandboxes-common.js";

const POLL_MS = 2500;
const METRICS_MAX = 25; // sandboxes whose metrics are sampled per poll

const STATES = [["live", "Live (starting, running, paused)", "starting,running,paused"], ["all", "All", ""],
  ["running", "Running", "running"], ["starting", "Starting", "starting"], ["paused", "Paused", "paused"],
  ["stopped", "Stopped", "stopped"], ["error", "Error", "error"]];

export default async function sandboxes(ctx) {
  const canWrite = ctx.can("sandboxes:write");
  const state = h("select", { name: "state" }, STATES.map(([v, label]) => h("option", { value: v, selected: v === (ctx.query.get("state") || "live") }, label)));
  const search = h("input", { type: "search", name: "q", placeholder: "id, template, label or key=value", value: ctx.query.get("q") || "" });
  const banner = h("div");
  const count = h("p.muted.small");
  const body = h("div", null, loading("Loading sandboxes"));
  const create = canWrite ? h("button.primary", { type: "button", onclick: onCreate }, "Create sandbox") : null;
  replace(ctx.main,
    pageHeader("Sandboxes", "Isolated environments your team runs. The list refreshes every few seconds.", create),
    h("form.toolbar", { role: "search", onsubmit: (e) => { e.preventDefault(); refresh(); } },
      field("State", state), field("Search", search), count),
    banner, body);

  const rows = new Map(); // id -> {tr, cells}
  let tbody = null;
  let list = [];
  let timer = null;

  state.addEventListener("change", refresh);
  let debounce;
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(render, 150); });

  async function onCreate() {
    const sb = await createSandbox();
    if (sb) { list.unshift(sb); render(); refresh(); }
  }

  function serverQuery() {
    const params = { limit: 200, state: STATES.find(([v]) => v === state.value)?.[2] };
    for (const tok of search.value.trim().split(/\s+/)) {
      const eq = tok.indexOf("=");
      if (eq > 0) params[`metadata.${tok.slice(0, eq)}`] = tok.slice(eq + 1);
    }
    return qs(params);
  }

  function matches(sb) {
    const words = search.value.trim().toLowerCase().split(/\s+/).filter((w) => w && !w.includes("="));
    const hay = [sb.id, sb.template, sb.runtime, sb.state, ...Object.entries(sb.metadata || {}).flat()].join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  }

  async function refresh() {
    clearTimeout(timer);
    if (document.hidden && tbody) {
      // Nobody is looking: poll again later without loading the server.
      timer = setTimeout(refresh, POLL_MS);
      return;
    }
    try {
      const res = await get(`/v1/sandboxes${serverQuery()}`, { signal: ctx.signal });
      list = res.sandboxes || [];
      replace(banner);
      const live = list.filter(isLive).slice(0, METRICS_MAX);
      forget(new Set(list.map((s) => s.id)));
      await Promise.allSettled(live.map((sb) => sampleMetrics(sb.id, ctx.signal)));
      render();
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(banner, errorBanner(err, refresh));
      if (!tbody) replace(body);
    }
    if (!ctx.signal.aborted) timer = setTimeout(refresh, POLL_MS);
  }
  ctx.cleanup(() => clearTimeout(timer));

  function render() {
    const shown = list.filter(matches);
    count.textContent = `${shown.length} of ${list.length} shown`;
    if (!shown.length) {
      tbody = null;
      rows.clear();
      replace(body, list.length
        ? empty("No sandbox matches the filter.", "Clear the search or pick another state.")
        : empty("No sandboxes yet.", canWrite ? "Create one from a template, or with the SDK or CLI." : "Sandboxes your team creates will appear here.",
          create ? h("button.primary", { type: "button", onclick: onCreate }, "Create sandbox") : null));
      return;
    }
    if (!tbody) {
      tbody = h("tbody");
      replace(body, h("div.table-wrap", null, h("table.sandboxes", null,
        h("caption.sr-only", null, "Sandboxes"),
        h("thead", null, h("tr", null, ["Sandbox", "State", "Template", "Runtime", "Age", "Time left", "CPU", "Memory", h("span.sr-only", null, "Actions")]
          .map((x) => h("th", { scope: "col" }, x)))), tbody)));
    }
    const keep = new Set();
    for (const sb of shown) {
      keep.add(sb.id);
      let r = rows.get(sb.id);
      if (!r) { r = makeRow(sb.id); rows.set(sb.id, r); }
      fill(r, sb);
      tbody.append(r.tr); // appending an existing node moves it: keeps order without losing focus
    }
    for (const [id, r] of rows) if (!keep.has(id)) { r.tr.remove(); rows.delete(id); }
  }

  function makeRow(id) {
    const c = {};
    const tr = h("tr", { "data-id": id },
      h("th", { scope: "row" }, h("a.mono", { href: sandboxHref(id) }, id), c.meta = h("div.chips")),
      // data-label names the cell when narrow screens stack a row's cells without the header.
      c.state = h("td", { "data-label": "State" }), c.template = h("td", { "data-label": "Template" }),
      c.runtime = h("td", { "data-label": "Runtime" }), c.age = h("td.num", { "data-label": "Age" }),
      c.left = h("td.num", { "data-label": "Time left" }), c.cpu = h("td.metric", { "data-label": "CPU" }),
      c.mem = h("td.metric", { "data-label": "Memory" }), c.actions = h("td.row-actions"));
    return { tr, c, key: "" };
  }

  function rowActions(sb) {
    const btn = (label, cls, fn) => h(`button.small${cls}`, { type: "button", "aria-label": `${label} ${sb.id}`, onclick: fn }, label);
    const kill = btn("Kill", ".danger", async () => { if (await killSandbox(sb)) { list = list.filter((x) => x.id !== sb.id); render(); refresh(); } });
    const update = (u) => { if (u) { list = list.map((x) => (x.id === u.id ? u : x)); render(); refresh(); } };
    if (sb.state === "running") {
      return [
        btn("Pause", "", async (e) => { const b = e.currentTarget; b.disabled = true; update(await pauseSandbox(sb)); b.disabled = false; }),
        btn("Fork", "", async () => { const made = await forkSandbox(sb); if (made?.length) { list.unshift(...made); render(); refresh(); } }),
        btn("Extend", "", async () => { const u = await extendSandbox(sb); if (u) refresh(); }),
        kill,
      ];
    }
    if (isPaused(sb)) {
      return [btn("Resume", "", async (e) => { const b = e.currentTarget; b.disabled = true; update(await resumeSandbox(sb)); b.disabled = false; }), kill];
    }
    return isLive(sb) ? [btn("Extend", "", async () => { const u = await extendSandbox(sb); if (u) refresh(); }), kill] : null;
  }

  function fill(r, sb) {
    const { c } = r;
    const key = `${sb.state}|${sb.ends_at}|${JSON.stringify(sb.metadata)}`;
    if (key !== r.key) {
      r.key = key;
      replace(c.state, badge(sb.state), sb.end_reason ? h("div.muted.small", null, sb.end_reason) : null);
      replace(c.meta, Object.entries(sb.metadata || {}).map(([k, v]) => h("span.chip", null, `${k}=${v}`)));
      c.template.textContent = sb.template;
      c.runtime.textContent = sb.runtime || "—";
      replace(c.actions, canWrite ? rowActions(sb) : null);
    }
    c.age.textContent = ago(sb.created_at);
    c.left.textContent = isLive(sb) ? left(sb.ends_at) : isPaused(sb) ? "paused" : "—";
    const hist = samples(sb.id);
    const last = hist[hist.length - 1];
    if (isLive(sb) && last) {
      replace(c.cpu, sparkline(hist.map((p) => p.cpu), 100, `CPU ${num(last.cpu)}%`, "cpu"), h("span.small", null, `${num(last.cpu, 0)}%`));
      replace(c.mem, sparkline(hist.map((p) => p.mem), Math.max(...hist.map((p) => p.mem)) * 1.25, `Memory ${bytes(last.mem)}`, "mem"), h("span.small", null, bytes(last.mem)));
    } else {
      replace(c.cpu, h("span.muted", null, "—"));
      replace(c.mem, h("span.muted", null, "—"));
    }
  }

  await refresh();
}
