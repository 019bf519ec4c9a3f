// The audit log: who did what, newest first, with paging and an action filter.
import { h, replace } from "../dom.js";
import { get, qs } from "../api.js";
import { pageHeader, empty, table, field, loading, errorBanner } from "../ui.js";
import { dateTime } from "../format.js";

const PAGE = 50;

export default async function audit(ctx) {
  const action = h("input", { type: "search", name: "action", placeholder: "e.g. sandbox.create" });
  const banner = h("div");
  const body = h("div");
  const pager = h("nav.pager", { "aria-label": "Audit log pages" });
  replace(ctx.main, pageHeader("Audit log", "Every change made in your team, by people, keys and the system."),
    h("form.toolbar", { role: "search", onsubmit: (e) => { e.preventDefault(); stack = [""]; load(); } },
      field("Action", action), h("button", { type: "submit" }, "Filter")),
    banner, body, pager);

  let stack = [""]; // "before" cursors of the pages visited; the last is the current page
  const names = new Map(); // user id -> email, to show people rather than ids
  if (ctx.can("team:read")) {
    try {
      for (const u of (await get("/v1/users", { signal: ctx.signal })).users || []) names.set(u.id, u.email);
    } catch { /* ids are shown instead */ }
  }

  async function load() {
    replace(body, loading("Loading the audit log"));
    try {
      const before = stack[stack.length - 1];
      const res = await get(`/v1/audit${qs({ action: action.value.trim(), before, limit: PAGE })}`, { signal: ctx.signal });
      replace(banner);
      const entries = res.entries || [];
      replace(body, entries.length ? table("Audit log entries", ["Time", "Actor", "Action", "Target", "Status", "From", "Request"], entries.map((e) =>
        h("tr", null,
          h("td", null, dateTime(e.at)),
          h("td", null, h("span.chip", null, e.actor_type), " ", names.has(e.actor_id) ? names.get(e.actor_id) : h("span.mono.small", null, e.actor_id || "")),
          h("th", { scope: "row" }, h("span.mono", null, e.action)),
          h("td.mono.small", null, e.target || "—"),
          h("td", null, h(`span.status.st${String(e.status)[0]}`, null, String(e.status || "—"))),
          h("td.small", null, e.remote_addr || "—"),
          h("td.mono.small", null, e.request_id || "—")))) : empty("No entries.", action.value ? "No entry has this action: clear the filter." : null));
      replace(pager,
        h("button", { type: "button", disabled: stack.length < 2, onclick: () => { stack.pop(); load(); } }, "Newer"),
        h("span.muted.small", null, `Page ${stack.length}`),
        h("button", { type: "button", disabled: !res.next, onclick: () => { stack.push(res.next); load(); } }, "Older"));
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(body);
      replace(banner, errorBanner(err, load));
    }
  }
  await load();
}
