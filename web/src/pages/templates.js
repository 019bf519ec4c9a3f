// The templates page: what sandboxes can start from, the server's built-ins and the
// team's own (built with `warren template build`, the SDKs or E2B's Template builder).
import { h, replace } from "../dom.js";
import { get } from "../api.js";
import { pageHeader, empty, badge, table } from "../ui.js";
import { bytes, dateTime } from "../format.js";

export default async function templates(ctx) {
  const res = await get("/v1/templates", { signal: ctx.signal });
  const list = res.templates || [];
  const own = list.filter((t) => !t.builtin).length;
  replace(ctx.main, pageHeader("Templates", `Root filesystems sandboxes start from: the server's built-ins and ${own ? `the team's ${own}` : "the team's own"}.`),
    list.length ? table("Templates", ["Template", "Owner", "Description", "Status", "Built", "Size"], list.map((t) =>
      h("tr", { "data-id": t.id },
        h("th", { scope: "row" }, h("a.mono", { href: `#/templates/${encodeURIComponent(t.id)}` }, t.id)),
        h("td", null, t.builtin ? badge("built-in", "role") : badge("team", "paused")),
        h("td", null, t.description || "—"),
        h("td", null, t.ready ? badge("ready", "running") : badge("not built", "starting")),
        h("td", null, dateTime(t.built_at)),
        h("td.num", null, t.size_bytes ? bytes(t.size_bytes) : "—"))))
      : empty("No templates.", "The server builds the base template on its first start."));
}
