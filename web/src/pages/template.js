// A template's detail page: its details, its running sandboxes, a create button and, for
// the team's own templates, its builds (refreshed while one runs).
import { h, replace } from "../dom.js";
import { get, ApiError } from "../api.js";
import { pageHeader, badge, table, empty } from "../ui.js";
import { bytes, dateTime, ago, duration } from "../format.js";
import { createSandbox, sandboxHref } from "../sandboxes-common.js";
import { buildBadge, buildHref, isRunning } from "./template-build.js";

const POLL_MS = 3000;

export default async function template(ctx) {
  const id = decodeURIComponent(ctx.params[0]);
  const [res, sbs] = await Promise.all([get("/v1/templates", { signal: ctx.signal }),
    ctx.can("sandboxes:read") ? get("/v1/sandboxes?state=starting,running&limit=200", { signal: ctx.signal }) : { sandboxes: [] }]);
  const t = (res.templates || []).find((x) => x.id === id);
  if (!t) throw new ApiError(404, { message: `There is no template "${id}". Pick one from the Templates page.` });
  const using = (sbs.sandboxes || []).filter((s) => s.template === id);
  const create = ctx.can("sandboxes:write") && t.ready
    ? h("button.primary", { type: "button", onclick: async () => { const sb = await createSandbox({ template: id }); if (sb) ctx.navigate(`/sandboxes/${sb.id}`); } }, "Create sandbox")
    : null;
  const row = (k, v) => [h("dt", null, k), h("dd", null, v)];
  const builds = h("section.card.span-all", { "aria-labelledby": "h-b" }, h("h2", { id: "h-b" }, "Builds"));
  replace(ctx.main,
    h("p.crumbs", null, h("a", { href: "#/templates" }, "Templates"), " / ", h("span.mono", null, id)),
    pageHeader(h("span", null, "Template ", h("span.mono", null, id)), t.description, create),
    h("div.overview", null,
      h("section.card", { "aria-labelledby": "h-t" }, h("h2", { id: "h-t" }, "Details"), h("dl.info", null,
        row("Status", t.ready ? badge("ready", "running") : badge("not built", "starting")),
        row("Owner", t.builtin ? "built-in (every team sees it)" : "your team"),
        row("Description", t.description || "—"),
        row("Built", t.built_at ? `${dateTime(t.built_at)} (${ago(t.built_at)} ago)` : "not yet"),
        row("Size", t.size_bytes ? bytes(t.size_bytes) : "—"),
        t.start_cmd ? row("Start command", h("code", null, t.start_cmd)) : null,
        row("Use it", h("code", null, `warren sandbox create --template ${id}`)))),
      h("section.card", { "aria-labelledby": "h-u" }, h("h2", { id: "h-u" }, "Live sandboxes from it"),
        using.length ? h("ul.plain", null, using.map((s) => h("li", null, h("a.mono", { href: sandboxHref(s.id) }, s.id), ` · ${s.state} · ${ago(s.created_at)} old`)))
          : h("p.muted", null, "None right now.")),
      builds));

  if (t.builtin) {
    builds.append(h("p.muted", null, "The server builds its built-in templates itself. Build one of your own on it with ",
      h("code", null, `FROM ${id}`), " in a Dockerfile and ", h("code", null, "warren template build --name NAME ."), "."));
    return;
  }
  const slot = h("div");
  builds.append(slot);
  let timer;
  ctx.cleanup(() => clearTimeout(timer));
  async function refresh() {
    const res = await get(`/v1/templates/${encodeURIComponent(id)}/builds`, { signal: ctx.signal });
    const list = res.builds || [];
    replace(slot, list.length ? table("Builds, newest first", ["Build", "State", "Started", "Took", "Steps (cached)", "Reason"], list.map((b) =>
      h("tr", { "data-id": b.id },
        h("th", { scope: "row" }, h("a.mono", { href: buildHref(id, b.id) }, b.id)),
        h("td", null, buildBadge(b.state)),
        h("td", null, dateTime(b.created_at)),
        h("td", null, b.finished_at ? duration(Date.parse(b.finished_at) - Date.parse(b.created_at)) : isRunning(b) ? "running" : "—"),
        h("td.num", null, `${b.steps.length} (${b.steps.filter((s) => s.cached).length})`),
        h("td.reason", { title: b.reason || "" }, b.reason ? b.reason.split("\n")[0] : "—"))))
      : empty("No builds kept.", "Builds appear here when the template is built."));
    if (list.some(isRunning)) timer = setTimeout(() => refresh().catch(() => {}), POLL_MS);
  }
  await refresh();
}
