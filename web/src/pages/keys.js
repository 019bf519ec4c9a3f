// The API keys page: list, create (the secret is shown once, with a copy button) and revoke.
import { h, replace } from "../dom.js";
import { get, post, del } from "../api.js";
import { pageHeader, empty, badge, table, formDialog, openDialog, confirmDialog, field, copyButton, toast, errorBanner } from "../ui.js";
import { dateTime } from "../format.js";

const SCOPES = ["sandboxes:read", "sandboxes:write", "keys:read", "keys:write", "usage:read", "team:read", "team:write", "audit:read", "admin"];
const EXPIRY = [["", "Never"], [86400, "1 day"], [7 * 86400, "7 days"], [30 * 86400, "30 days"], [90 * 86400, "90 days"], [365 * 86400, "1 year"]];

function status(k) {
  if (k.revoked_at) return badge("revoked", "stopped");
  if (k.expires_at && Date.parse(k.expires_at) < Date.now()) return badge("expired", "error");
  return badge("active", "running");
}

export default async function keys(ctx) {
  const canWrite = ctx.can("keys:write");
  const banner = h("div");
  const body = h("div");
  const create = canWrite ? h("button.primary", { type: "button", onclick: onCreate }, "Create API key") : null;
  replace(ctx.main, pageHeader("API keys", "Keys let programs (SDKs, the CLI) call the API as your team.", create), banner, body);

  async function load() {
    const res = await get("/v1/keys", { signal: ctx.signal });
    const list = (res.keys || []).sort((a, b) => !!a.revoked_at - !!b.revoked_at || b.created_at.localeCompare(a.created_at));
    if (!list.length) return replace(body, empty("No API keys yet.", canWrite ? "Create one for your SDK or CI." : null));
    replace(body, table("API keys", ["Name", "Key", "Scopes", "Created", "Last used", "Expires", "Status", h("span.sr-only", null, "Actions")], list.map((k) =>
      h("tr", { "data-id": k.id, "data-name": k.name },
        h("th", { scope: "row" }, k.name || h("span.muted", null, "(unnamed)")),
        h("td.mono", null, `${k.prefix}…`),
        h("td", null, k.admin ? h("span.chip", null, "platform admin") : (k.scopes || []).map((sc) => h("span.chip", null, sc))),
        h("td", null, dateTime(k.created_at)),
        h("td", null, k.last_used_at ? dateTime(k.last_used_at) : "never"),
        h("td", null, k.expires_at ? dateTime(k.expires_at) : "never"),
        h("td", null, status(k)),
        h("td.row-actions", null, canWrite && !k.revoked_at
          ? h("button.small.danger", { type: "button", "aria-label": `Revoke ${k.name || k.prefix}`, onclick: () => revoke(k) }, "Revoke") : null)))));
  }

  async function revoke(k) {
    if (!await confirmDialog(`Revoke key ${k.name || k.prefix}?`, "Programs using it get 401 from now on. This cannot be undone.", "Revoke key")) return;
    try {
      await del(`/v1/keys/${k.id}`);
      toast(`Key ${k.name || k.prefix} revoked`);
    } catch (err) {
      replace(banner, errorBanner(err));
    }
    load();
  }

  async function onCreate() {
    const mine = ctx.app.me.scopes || [];
    const offered = mine.includes("admin") || ctx.app.me.admin ? SCOPES : SCOPES.filter((sc) => mine.includes(sc));
    const created = await formDialog("Create an API key", [
      field("Name", h("input", { name: "name", required: true, maxLength: 200, placeholder: "ci-runner", autofocus: true }), "To tell keys apart later."),
      h("fieldset.scopes", null, h("legend", null, "Scopes (never more than yours)"),
        offered.map((sc) => h("label.check", null, h("input", { type: "checkbox", name: "scopes", value: sc, checked: sc !== "admin" }), sc))),
      field("Expires", h("select", { name: "expires_in" }, EXPIRY.map(([v, l]) => h("option", { value: v, selected: v === 30 * 86400 }, l)))),
    ], "Create key", async (fd) => {
      const scopes = fd.getAll("scopes");
      if (!scopes.length) throw new Error("Pick at least one scope.");
      const body = { name: String(fd.get("name")).trim(), scopes };
      if (fd.get("expires_in")) body.expires_in = Number(fd.get("expires_in"));
      return post("/v1/keys", body);
    });
    if (!created) return;
    load();
    await openDialog("Your new API key", (close) => [
      h("p", null, h("strong", null, "Copy it now: "), "this is the only time the secret is shown. Store it in a secret manager."),
      h("div.secret", null, h("input.mono", { type: "text", readOnly: true, value: created.key, "aria-label": "API key secret", id: "new-key-secret", onfocus: (e) => e.target.select() }),
        copyButton(created.key)),
      h("p.muted.small", null, "Use it as WARREN_API_KEY (CLI) or E2B_API_KEY (E2B SDKs)."),
      h("div.dialog-actions", null, h("button.primary", { type: "button", onclick: () => close() }, "Done")),
    ]);
  }

  await load();
}
