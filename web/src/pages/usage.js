// Usage and billing: usage over time (total, by template, by sandbox), breakdowns by
// template and sandbox, quota gauges, the current plan and invoices with CSV downloads.
import { h, replace } from "../dom.js";
import { get, qs } from "../api.js";
import { pageHeader, empty, errorBanner, loading, badge, table, field } from "../ui.js";
import { num, bytes, money, dateTime } from "../format.js";
import { columnChart, barList, gauge } from "../charts.js";
import { sandboxHref } from "../sandboxes-common.js";

const METRICS = {
  minutes: { label: "Sandbox minutes", get: (r) => r.wall_ms / 60000, fmt: (v) => `${num(v, v < 10 ? 2 : 1)} min` },
  cpu: { label: "CPU core-hours", get: (r) => r.cpu_us / 3.6e9, fmt: (v) => `${num(v, 3)} h` },
  memory: { label: "Memory GiB-hours", get: (r) => r.memory_mb_s / 1024 / 3600, fmt: (v) => `${num(v, 3)} GiB·h` },
  disk: { label: "Disk GiB-hours", get: (r) => r.disk_mb_s / 1024 / 3600, fmt: (v) => `${num(v, 3)} GiB·h` },
  network: { label: "Network traffic", get: (r) => r.net_rx_bytes + r.net_tx_bytes, fmt: bytes },
};
const SPLIT_SANDBOXES = 30; // per-sandbox series fetched for the split charts

const pad = (n) => String(n).padStart(2, "0");
const monthOf = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;

export default async function usage(ctx) {
  const month = h("input", { type: "month", name: "month", value: monthOf(new Date()), max: monthOf(new Date()), required: true });
  const metric = h("select", { name: "metric" }, Object.entries(METRICS).map(([k, m]) => h("option", { value: k }, m.label)));
  const split = h("select", { name: "split" }, [["total", "Total"], ["template", "By template"], ["sandbox", "By sandbox (top 5)"]].map(([v, l]) => h("option", { value: v }, l)));
  const banner = h("div");
  const body = h("div", null, loading("Loading usage"));
  replace(ctx.main,
    pageHeader("Usage & billing", "What your team used, what it costs, and how close it is to its quotas.",
      h("button", { type: "button", onclick: () => load() }, "Refresh")),
    h("form.toolbar", { onsubmit: (e) => { e.preventDefault(); load(); } },
      field("Month (UTC)", month), field("Measure", metric), field("Over time", split)),
    banner, body);

  let data = null;
  const perSandbox = new Map(); // sandbox id -> day rows, for the split charts
  const overTime = h("figure.chart-box.span2");
  month.addEventListener("change", () => load());
  metric.addEventListener("change", () => data && render());
  split.addEventListener("change", () => data && drawOverTime());

  function range() {
    const [y, m] = month.value.split("-").map(Number);
    const from = new Date(Date.UTC(y, m - 1, 1));
    const to = new Date(Date.UTC(y, m, 1));
    return { from, to };
  }

  async function load() {
    const { from, to } = range();
    const q = (group, extra) => get(`/v1/usage${qs({ group_by: group, from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10), ...extra })}`, { signal: ctx.signal });
    try {
      const [days, templates, sandboxes, me, plans, invoices] = await Promise.all([
        q("day"), q("template"), q("sandbox"), get("/v1/me", { signal: ctx.signal }),
        get("/v1/plans", { signal: ctx.signal }).catch(() => ({ plans: [] })),
        get("/v1/invoices", { signal: ctx.signal }).catch((err) => ({ invoices: [], error: err })),
      ]);
      data = { days, templates, sandboxes, me, plans: plans.plans || [], invoices, from, to, q };
      perSandbox.clear();
      replace(banner);
      render();
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(banner, errorBanner(err, load));
      replace(body);
    }
  }

  function dayLabels() {
    const out = [];
    const end = Math.min(data.to.getTime(), Date.now());
    for (let t = data.from.getTime(); t < end; t += 86400000) out.push(new Date(t).toISOString().slice(0, 10));
    return out;
  }

  async function drawOverTime() {
    const m = METRICS[metric.value];
    const days = dayLabels();
    const title = `${m.label} per day`;
    let series = [m.label];
    let byDay = new Map((data.days.rows || []).map((r) => [r.day.slice(0, 10), [m.get(r)]]));
    if (split.value !== "total") {
      replace(overTime, loading("Loading per-sandbox usage"));
      const rows = [...(data.sandboxes.rows || [])].sort((a, b) => m.get(b) - m.get(a)).slice(0, SPLIT_SANDBOXES);
      await Promise.all(rows.filter((r) => !perSandbox.has(r.sandbox_id)).map(async (r) => {
        perSandbox.set(r.sandbox_id, (await data.q("day", { sandbox_id: r.sandbox_id })).rows || []);
      }));
      const key = split.value === "template" ? (r) => r.template_id || "?" : (r, i) => (i < 5 ? r.sandbox_id : "others");
      series = [...new Set(rows.map(key))];
      byDay = new Map();
      rows.forEach((r, i) => {
        const k = series.indexOf(key(r, i));
        for (const d of perSandbox.get(r.sandbox_id) || []) {
          const day = d.day.slice(0, 10);
          const parts = byDay.get(day) || series.map(() => 0);
          parts[k] += m.get(d);
          byDay.set(day, parts);
        }
      });
      if (!series.length) series = [m.label];
    }
    const items = days.map((d) => ({ label: d.slice(8), parts: byDay.get(d) || series.map(() => 0) }));
    replace(overTime, h("figcaption", null, title), columnChart(`${title}, ${month.value}`, items, series, m.fmt));
  }

  function render() {
    const m = METRICS[metric.value];
    const { templates, sandboxes, me } = data;
    const total = data.days.total || {};
    const card = (label, value) => h("div.stat", null, h("span.stat-label", null, label), h("span.stat-value", null, value));
    const sbRows = [...(sandboxes.rows || [])].sort((a, b) => m.get(b) - m.get(a));
    const tplRows = [...(templates.rows || [])].sort((a, b) => m.get(b) - m.get(a));
    drawOverTime();
    replace(body,
      h("div.stats", null,
        card("Sandbox minutes", METRICS.minutes.fmt(METRICS.minutes.get(total))),
        card("CPU core-hours", METRICS.cpu.fmt(METRICS.cpu.get(total))),
        card("Memory GiB-hours", METRICS.memory.fmt(METRICS.memory.get(total))),
        card("Network", bytes(total.net_rx_bytes + total.net_tx_bytes || 0))),
      h("div.grid2", null,
        overTime,
        h("section.card", { "aria-labelledby": "h-tpl" }, h("h2", { id: "h-tpl" }, `${m.label} by template`),
          tplRows.length ? barList(tplRows.map((r) => ({ label: r.template_id || "?", value: m.get(r), href: `#/templates/${encodeURIComponent(r.template_id)}` })), m.fmt)
            : empty("No usage this month.")),
        h("section.card", { "aria-labelledby": "h-quota" }, h("h2", { id: "h-quota" }, "Quotas"), quotas(me.team))),
      h("section.card.block", { "aria-labelledby": "h-sb" }, h("h2", { id: "h-sb" }, "By sandbox"),
        sbRows.length ? table("Usage by sandbox", ["Sandbox", "Template", "Minutes", "CPU core-hours", "Memory GiB-hours", "Network"], sbRows.map((r) =>
          h("tr", { "data-id": r.sandbox_id },
            h("th", { scope: "row" }, h("a.mono", { href: sandboxHref(r.sandbox_id) }, r.sandbox_id)),
            h("td", null, r.template_id || "—"),
            h("td.num.minutes", null, METRICS.minutes.fmt(METRICS.minutes.get(r))),
            h("td.num", null, METRICS.cpu.fmt(METRICS.cpu.get(r))),
            h("td.num", null, METRICS.memory.fmt(METRICS.memory.get(r))),
            h("td.num", null, bytes(r.net_rx_bytes + r.net_tx_bytes))))) : empty("No sandbox ran this month.", "Usage is sampled while sandboxes run and appears here within a minute.")),
      h("div.grid2", null, planCard(me.team, data.plans), invoicesCard(data.invoices)));
  }

  await load();
}

function quotas(team) {
  const q = team?.quota || {};
  const u = team?.usage || {};
  return h("div.gauges", null,
    gauge("Running sandboxes", u.sandboxes || 0, q.max_sandboxes || 0, (v) => num(v, 0)),
    gauge("CPU cores", u.cpu_cores || 0, q.max_cpu_cores || 0, (v) => num(v, 2)),
    gauge("Memory", (u.memory_mb || 0) * 1048576, (q.max_memory_mb || 0) * 1048576, bytes),
    gauge("Disk", (u.disk_mb || 0) * 1048576, (q.max_disk_mb || 0) * 1048576, bytes),
    h("p.muted.small", null, `API rate limit: ${q.requests_per_minute ? `${q.requests_per_minute} requests per minute` : "none"}.`,
      team?.spend_limit ? ` Spending limit: ${team.spend_limit} per month.` : ""));
}

function planCard(team, plans) {
  const plan = plans.find((p) => p.id === team?.plan_id);
  const row = (k, v) => (v ? [h("dt", null, k), h("dd", null, v)] : null);
  const price = (v) => (Number(v) > 0 ? money(v, plan.currency) : null);
  return h("section.card", { "aria-labelledby": "h-plan" }, h("h2", { id: "h-plan" }, "Plan"),
    plan ? [h("p.plan-name", null, plan.name || plan.id, " ", h("span.muted.mono", null, plan.id)),
      h("dl.info", null,
        row("Monthly price", price(plan.monthly_price)),
        row("Per sandbox minute", price(plan.per_minute)),
        row("Minimum charge", price(plan.minimum_charge)),
        row("Per CPU hour", price(plan.per_cpu_hour)),
        row("Per GiB-hour of memory", price(plan.per_gb_hour)),
        row("Per GiB-month of disk", price(plan.per_gb_month_disk)),
        row("Per GiB of traffic", price(plan.per_gb_traffic)),
        row("Included hours", Number(plan.included_hours) > 0 && plan.included_hours),
        row("Included concurrency", plan.included_concurrency > 0 && `${plan.included_concurrency} sandboxes`)),
      h("p.muted.small", null, "Anything not listed is not charged.")]
      : empty(team?.plan_id ? `Plan ${team.plan_id}` : "No plan", "Usage is recorded but not charged. A platform admin sets the team's plan."));
}

function invoicesCard(res) {
  const list = res.invoices || [];
  return h("section.card", { "aria-labelledby": "h-inv" }, h("h2", { id: "h-inv" }, "Invoices"),
    res.error ? errorBanner(res.error) : null,
    !res.error && !list.length ? empty("No invoices yet.", "An invoice is drafted once the team has a plan.") : null,
    list.length ? table("Invoices", ["Period", "Status", "Total", h("span.sr-only", null, "Download")], list.map((inv) => {
      const period = inv.period_start.slice(0, 7);
      return h("tr", { "data-period": period },
        h("th", { scope: "row" }, period, h("div.muted.small", null, `${dateTime(inv.period_start)} – ${dateTime(inv.period_end)}`)),
        h("td", null, inv.final ? badge("final", "running") : badge("draft", "starting")),
        h("td.num", null, money(inv.total, inv.currency)),
        h("td.row-actions", null, h("a.button.small", { href: `/v1/invoices/${period}?format=csv`, download: `warren-invoice-${period}.csv` }, "CSV")));
    })) : null);
}
