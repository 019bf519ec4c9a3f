// Teams: each team's plan, spending limit, quotas and what it uses now (/v1/teams). Team
// members see their own team read-only; platform administrators see every team and can
// create teams and change their quota, plan and spending limit.
import { h, replace } from "../dom.js";
import { get, post, patch } from "../api.js";
import { pageHeader, empty, formDialog, field, toast, errorBanner, loading } from "../ui.js";
import { num, bytes, money, dateTime } from "../format.js";
import { gauge } from "../charts.js";

// QUOTA lists the quota fields: key, label, step (decimals allowed for CPU cores).
const QUOTA = [
  ["max_sandboxes", "Running sandboxes", "1"],
  ["max_cpu_cores", "CPU cores", "0.1"],
  ["max_memory_mb", "Memory (MiB)", "1"],
  ["max_disk_mb", "Disk (MiB)", "1"],
  ["requests_per_minute", "API requests per minute", "1"],
  ["max_snapshots", "Snapshots kept", "1"],
];

export default async function teams(ctx) {
  const admin = !!ctx.app.me.admin;
  const banner = h("div");
  const body = h("div", null, loading("Loading teams"));
  const create = admin ? h("button.primary", { type: "button", onclick: onCreate }, "Create team") : null;
  replace(ctx.main, pageHeader("Teams", admin
    ? "Every team on this server: plans, spending limits and quotas."
    : "Your team's plan, spending limit and quotas. A platform administrator changes them.", create), banner, body);
  let plans = [];

  async function load() {
    try {
      const [list, pl] = await Promise.all([
        get("/v1/teams", { signal: ctx.signal }),
        get("/v1/plans", { signal: ctx.signal }).catch(() => ({ plans: [] })),
      ]);
      plans = pl.plans || [];
      // The list has no usage: each team's own record does.
      const detailed = await Promise.all((list.teams || []).map((t) =>
        get(`/v1/teams/${encodeURIComponent(t.id)}`, { signal: ctx.signal }).catch(() => t)));
      replace(banner);
      if (!detailed.length) return replace(body, empty("No teams yet.", admin ? "Create the first team." : null));
      replace(body, detailed.map(teamCard));
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(banner, errorBanner(err, () => { replace(body, loading("Loading teams")); load(); }));
      replace(body);
    }
  }

  function planLabel(id) {
    if (!id) return "No plan (usage is recorded, not charged)";
    const p = plans.find((x) => x.id === id);
    return p ? `${p.name || p.id} (${p.id})` : id;
  }

  function teamCard(t) {
    const q = t.quota || {};
    const u = t.usage;
    const plan = plans.find((x) => x.id === t.plan_id);
    const headId = `team-${t.id}`;
    const row = (k, v) => [h("dt", null, k), h("dd", null, v)];
    return h("section.card.block", { "aria-labelledby": headId, "data-id": t.id },
      h("div.card-head.block", null, h("h2", { id: headId }, t.name || t.id),
        admin ? h("button.small", { type: "button", "aria-label": `Edit ${t.name || t.id}`, onclick: () => onEdit(t) }, "Edit") : null),
      h("div.grid2", null,
        h("dl.info", null,
          row("Plan", planLabel(t.plan_id)),
          row("Spending limit", t.spend_limit ? `${money(t.spend_limit, plan?.currency)} per month` : "none"),
          row("API rate limit", q.requests_per_minute ? `${num(q.requests_per_minute, 0)} requests per minute` : "none"),
          row("Created", dateTime(t.created_at)),
          row("ID", h("span.mono", null, t.id))),
        h("div.gauges", null, u ? [
          gauge("Running sandboxes", u.sandboxes || 0, q.max_sandboxes || 0, (v) => num(v, 0)),
          gauge("CPU cores", u.cpu_cores || 0, q.max_cpu_cores || 0, (v) => num(v, 2)),
          gauge("Memory", (u.memory_mb || 0) * 1048576, (q.max_memory_mb || 0) * 1048576, bytes),
          gauge("Disk", (u.disk_mb || 0) * 1048576, (q.max_disk_mb || 0) * 1048576, bytes),
          gauge("Snapshots", u.snapshots || 0, q.max_snapshots || 0, (v) => num(v, 0)),
        ] : h("p.muted", null, "Current usage could not be loaded."))));
  }

  // planSelect offers the plans; first is the option for "" (no plan, or the server's default).
  const planSelect = (current, first) => h("select", { name: "plan_id" },
    h("option", { value: "" }, first),
    plans.map((p) => h("option", { value: p.id, selected: p.id === current }, `${p.name || p.id} (${p.id})`)));

  const quotaFields = (q, help) => h("fieldset", null, h("legend", null, "Quotas (0 = no limit)"),
    h("div.grid4", null, QUOTA.map(([k, label, step]) =>
      field(label, h("input", { type: "number", name: k, min: "0", step, inputmode: step === "1" ? "numeric" : "decimal", value: q ? String(q[k] ?? 0) : "", placeholder: q ? "" : "default" })))),
    help ? h("p.help", null, help) : null);

  const spendField = (v) => field("Spending limit per month", h("input", { name: "spend_limit", inputmode: "decimal", value: v || "", placeholder: "none", autocomplete: "off" }),
    "An amount in the plan's currency, such as 50 or 49.99; empty for none.");

  // quotaPatch returns the quota fields set in the form that differ from q (all set ones without q).
  function quotaPatch(fd, q) {
    const out = {};
    for (const [k] of QUOTA) {
      const raw = String(fd.get(k) ?? "").trim();
      if (raw === "") continue;
      const v = Number(raw);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${k}: write 0 (no limit) or a positive number.`);
      if (!q || v !== (q[k] ?? 0)) out[k] = v;
    }
    return Object.keys(out).length ? out : null;
  }

  async function onCreate() {
    const created = await formDialog("Create a team", [
      field("Name", h("input", { name: "name", required: true, maxLength: 200, autocomplete: "off", autofocus: true })),
      field("Plan", planSelect("", "Server default")),
      spendField(""),
      quotaFields(null, "Empty fields take the server's default quota."),
    ], "Create team", async (fd) => {
      const req = { name: String(fd.get("name")).trim() };
      const quota = quotaPatch(fd, null);
      if (quota) req.quota = quota;
      if (fd.get("plan_id")) req.plan_id = String(fd.get("plan_id"));
      const spend = String(fd.get("spend_limit")).trim();
      if (spend) req.spend_limit = spend;
      return post("/v1/teams", req);
    }, { wide: true });
    if (!created) return;
    toast(`Team ${created.name} created`);
    await load();
    focusEdit(created.id);
  }

  async function onEdit(t) {
    const saved = await formDialog(`Edit team ${t.name || t.id}`, [
      field("Plan", planSelect(t.plan_id, "No plan (not charged)")),
      spendField(t.spend_limit),
      quotaFields(t.quota || {}),
    ], "Save", async (fd) => {
      const req = {};
      const quota = quotaPatch(fd, t.quota || {});
      if (quota) req.quota = quota;
      const planId = String(fd.get("plan_id"));
      if (planId !== (t.plan_id || "")) req.plan_id = planId;
      const spend = String(fd.get("spend_limit")).trim();
      if (spend !== (t.spend_limit || "")) req.spend_limit = spend;
      if (!Object.keys(req).length) return "unchanged";
      return patch(`/v1/teams/${encodeURIComponent(t.id)}`, req);
    }, { wide: true });
    if (!saved) return;
    if (saved !== "unchanged") toast(`Team ${t.name || t.id} saved`);
    await load();
    focusEdit(t.id);
  }

  // focusEdit puts focus back on a team's Edit button once the list is redrawn.
  const focusEdit = (id) => body.querySelector(`[data-id="${CSS.escape(id)}"] button`)?.focus();

  await load();
}
