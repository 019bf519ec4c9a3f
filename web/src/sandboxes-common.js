// What the sandbox pages share: the create, extend, kill, pause, resume and fork actions,
// and the metrics history behind the sparklines and charts.
import { h } from "./dom.js";
import { get, post, del } from "./api.js";
import { formDialog, confirmDialog, field, toast } from "./ui.js";
import { kv, left } from "./format.js";

/** live reports whether a sandbox still runs (or is starting). */
export const isLive = (sb) => sb.state === "running" || sb.state === "starting";

/** isPaused reports whether a sandbox is paused (memory and files saved, nothing running). */
export const isPaused = (sb) => sb.state === "paused";

/** sandboxPath is the console route of a sandbox. */
export const sandboxHref = (id, tab) => `#/sandboxes/${id}${tab ? `/${tab}` : ""}`;

const history = new Map(); // id -> [{t, cpu, mem, memTotal}]
const HISTORY = 60;

/** samples returns the metrics samples collected for a sandbox so far. */
export const samples = (id) => history.get(id) || [];

const METRICS_WAIT_MS = 5000;

/**
 * sampleMetrics fetches one metrics sample and appends it to the sandbox's history. It
 * gives up after a few seconds, so that a sample that does not come (the sandbox being
 * paused under it) cannot stop the page's polling.
 */
export async function sampleMetrics(id, signal) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), METRICS_WAIT_MS);
  const stop = () => ac.abort();
  signal?.addEventListener("abort", stop, { once: true });
  let m;
  try {
    m = await get(`/v1/sandboxes/${id}/metrics`, { signal: ac.signal });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", stop);
  }
  const list = history.get(id) || [];
  const t = Date.parse(m.timestamp) || Date.now();
  if (!list.length || list[list.length - 1].t !== t) {
    list.push({ t, cpu: m.cpu_used_pct || 0, mem: m.mem_used || 0, memTotal: m.mem_total || 0, cpuCount: m.cpu_count, disk: m.disk_used, diskTotal: m.disk_total });
  }
  if (list.length > HISTORY) list.splice(0, list.length - HISTORY);
  history.set(id, list);
  return m;
}

/** forget drops the history of sandboxes that are gone. */
export function forget(keep) {
  for (const id of history.keys()) if (!keep.has(id)) history.delete(id);
}

/** killSandbox asks for confirmation, then kills; it resolves true when killed. */
export async function killSandbox(sb) {
  const ok = await confirmDialog(`Kill sandbox ${sb.id}?`,
    "Its processes stop at once and its files are deleted. This cannot be undone.", "Kill sandbox");
  if (!ok) return false;
  try {
    await del(`/v1/sandboxes/${sb.id}`);
    toast(`Sandbox ${sb.id} killed`);
    return true;
  } catch (err) {
    toast(`Could not kill ${sb.id}: ${err.message}`, "error");
    return false;
  }
}

/**
 * pauseSandbox pauses a running sandbox; it resolves with the paused sandbox, or
 * undefined when the server refused (the toast says why: its message says what to do).
 */
export async function pauseSandbox(sb) {
  try {
    const updated = await post(`/v1/sandboxes/${sb.id}/pause`);
    toast(`Sandbox ${sb.id} paused`);
    return updated;
  } catch (err) {
    toast(`Could not pause ${sb.id}: ${err.message}`, "error");
    return undefined;
  }
}

/** resumeSandbox resumes a paused sandbox; it resolves with the running sandbox, or undefined. */
export async function resumeSandbox(sb) {
  try {
    const updated = await post(`/v1/sandboxes/${sb.id}/resume`);
    toast(`Sandbox ${sb.id} resumed`);
    return updated;
  } catch (err) {
    toast(`Could not resume ${sb.id}: ${err.message}`, "error");
    return undefined;
  }
}

/**
 * forkSandbox asks how many copies to start, then forks; it resolves with the new
 * sandboxes, or undefined when cancelled. An error stays in the dialog.
 */
export function forkSandbox(sb) {
  const count = h("input", { name: "count", type: "number", min: 1, max: 20, value: 1, required: true, inputMode: "numeric" });
  return formDialog(`Fork sandbox ${sb.id}`, [
    h("p", null, "Each copy starts with this sandbox's memory, files and processes as they are now, and gets its own id, address and timeout. What a copy writes, the others do not see. This sandbox keeps running."),
    field("Copies", count, "From 1 to 20."),
  ], "Fork", async (fd) => {
    const res = await post(`/v1/sandboxes/${sb.id}/fork`, { count: Number(fd.get("count")) });
    const made = res.sandboxes || [];
    if (made.length) toast(`Forked ${sb.id}: ${made.map((s) => s.id).join(", ")}`);
    // Each copy is admitted like a create: some may start while others find the quota full.
    for (const e of res.errors || []) toast(`Copy ${e.index + 1} did not start: ${e.message}`, "error");
    return made;
  });
}

const EXTEND = [[15, "15 minutes"], [30, "30 minutes"], [60, "1 hour"], [120, "2 hours"], [360, "6 hours"], [1440, "24 hours (maximum)"]];

/** extendSandbox sets when the sandbox ends; it resolves with the updated sandbox. */
export function extendSandbox(sb) {
  const sel = h("select", { name: "minutes" }, EXTEND.map(([m, label]) => h("option", { value: m, selected: m === 60 }, label)));
  return formDialog(`Extend sandbox ${sb.id}`, [
    h("p", null, `Time left now: ${left(sb.ends_at)}. The sandbox will end this long from now:`),
    field("New time left", sel),
  ], "Set timeout", async (fd) => {
    const updated = await post(`/v1/sandboxes/${sb.id}/timeout`, { timeout: Number(fd.get("minutes")) * 60 });
    toast(`Sandbox ${sb.id} now ends in ${left(updated.ends_at)}`);
    return updated;
  });
}

/**
 * createSandbox shows the create dialog (template, timeout, env, metadata, limits,
 * internet); it resolves with the new sandbox, or undefined when cancelled.
 */
export async function createSandbox(preset = {}) {
  let templates = [];
  try {
    templates = (await get("/v1/templates")).templates || [];
  } catch { /* the dialog still allows typing a template id */ }
  const ready = templates.filter((t) => t.ready);
  const template = ready.length
    ? h("select", { name: "template", required: true }, ready.map((t) =>
      h("option", { value: t.id, selected: t.id === (preset.template || "base") }, t.description ? `${t.id} — ${t.description}` : t.id)))
    : h("input", { name: "template", value: preset.template || "base", required: true });
  const timeout = h("input", { name: "timeout", type: "number", min: 1, max: 1440, value: 15, required: true, inputMode: "numeric" });
  const num = (name, step, placeholder) => h("input", { name, type: "number", min: 0, step, placeholder, inputMode: "decimal" });
  return formDialog("Create a sandbox", [
    field("Template", template, templates.length && !ready.length ? "No template is ready yet; type an id." : null),
    field("Timeout (minutes)", timeout, "It is stopped after this long unless extended (at most 24 hours)."),
    h("details.more", null, h("summary", null, "Environment, metadata and limits"),
      field("Environment variables", h("textarea", { name: "env", rows: 3, placeholder: "KEY=value, one per line", spellcheck: false }),
        "Values are never shown again: they may be secrets."),
      field("Metadata", h("textarea", { name: "metadata", rows: 2, placeholder: "owner=alice", spellcheck: false }), "Labels you can filter the list by."),
      h("fieldset.grid4", null, h("legend", null, "Limits (empty = server default)"),
        field("CPU cores", num("cpu_cores", 0.25, "default")),
        field("Memory (MiB)", num("memory_mb", 64, "default")),
        field("Disk (MiB)", num("disk_mb", 64, "default")),
        field("Processes", num("max_processes", 1, "default"))),
      h("label.check", null, h("input", { type: "checkbox", name: "internet", checked: true }), "Allow outbound internet access")),
  ], "Create sandbox", async (fd) => {
    const body = {
      template: String(fd.get("template")).trim(),
      timeout: Math.round(Number(fd.get("timeout")) * 60),
      internet: fd.get("internet") === "on",
    };
    const env = kv(String(fd.get("env") || ""), "Environment variables");
    const meta = kv(String(fd.get("metadata") || ""), "Metadata");
    if (Object.keys(env).length) body.env = env;
    if (Object.keys(meta).length) body.metadata = meta;
    const limits = {};
    for (const k of ["cpu_cores", "memory_mb", "disk_mb", "max_processes"]) {
      const v = String(fd.get(k) || "").trim();
      if (v) limits[k] = Number(v);
    }
    if (Object.keys(limits).length) body.limits = { cpu_cores: 0, memory_mb: 0, disk_mb: 0, max_processes: 0, ...limits };
    const sb = await post("/v1/sandboxes", body);
    toast(`Sandbox ${sb.id} created`);
    return sb;
  }, { wide: true });
}
