// A template's detail page, with its running sandboxes and a create button.
import { h, replace } from "../dom.js";
import { get, ApiError } from "../api.js";
import { pageHeader, badge } from "../ui.js";
import { bytes, dateTime, ago } from "../format.js";
import { createSandbox, sandboxHref } from "../sandboxes-common.js";

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
  replace(ctx.main,
    h("p.crumbs", null, h("a", { href: "#/templates" }, "Templates"), " / ", h("span.mono", null, id)),
    pageHeader(h("span", null, "Template ", h("span.mono", null, id)), t.description, create),
    h("div.overview", null,
      h("section.card", { "aria-labelledby": "h-t" }, h("h2", { id: "h-t" }, "Details"), h("dl.info", null,
        row("Status", t.ready ? badge("ready", "running") : badge("building", "starting")),
        row("Description", t.description || "—"),
        row("Built", t.built_at ? `${dateTime(t.built_at)} (${ago(t.built_at)} ago)` : "not yet"),
        row("Size", t.size_bytes ? bytes(t.size_bytes) : "—"),
        row("Use it", h("code", null, `warren sandbox create --template ${id}`)))),
      h("section.card", { "aria-labelledby": "h-u" }, h("h2", { id: "h-u" }, "Live sandboxes from it"),
        using.length ? h("ul.plain", null, using.map((s) => h("li", null, h("a.mono", { href: sandboxHref(s.id) }, s.id), ` · ${s.state} · ${ago(s.created_at)} old`)))
          : h("p.muted", null, "None right now."))));
}
