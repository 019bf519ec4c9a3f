// The templates page: what sandboxes can start from.
import { h, replace } from "../dom.js";
import { get } from "../api.js";
import { pageHeader, empty, badge, table } from "../ui.js";
import { bytes, dateTime } from "../format.js";

export default async function templates(ctx) {
  const res = await get("/v1/templates", { signal: ctx.signal });
  const list = res.templates || [];
  replace(ctx.main, pageHeader("Templates", "Root filesystems sandboxes start from, built by the server."),
    list.length ? table("Templates", ["Template", "Description", "Status", "Built", "Size"], list.map((t) =>
      h("tr", { "data-id": t.id },
        h("th", { scope: "row" }, h("a.mono", { href: `#/templates/${encodeURIComponent(t.id)}` }, t.id)),
        h("td", null, t.description || "—"),
        h("td", null, t.ready ? badge("ready", "running") : badge("building", "starting")),
        h("td", null, dateTime(t.built_at)),
        h("td.num", null, t.size_bytes ? bytes(t.size_bytes) : "—"))))
      : empty("No templates.", "The server builds the base template on its first start."));
}
