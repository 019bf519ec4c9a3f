// Team members and roles: list, add, change role, remove (/v1/users).
import { h, replace } from "../dom.js";
import { get, post, patch, del } from "../api.js";
import { pageHeader, empty, table, formDialog, confirmDialog, field, toast, errorBanner, badge } from "../ui.js";
import { dateTime } from "../format.js";

const ROLES = [["owner", "Owner — everything"], ["admin", "Admin — everything in the team"], ["member", "Member — sandboxes, keys, usage"], ["viewer", "Viewer — read only"]];

export default async function team(ctx) {
  const canWrite = ctx.can("team:write");
  const me = ctx.app.me;
  const banner = h("div");
  const body = h("div");
  const add = canWrite ? h("button.primary", { type: "button", onclick: onAdd }, "Add member") : null;
  const t = me.team || {};
  replace(ctx.main, pageHeader("Team", `${t.name || t.id} · members and what their roles allow.`, add), banner, body);

  async function load() {
    const res = await get("/v1/users", { signal: ctx.signal });
    const users = res.users || [];
    if (!users.length) return replace(body, empty("No users in this team.", canWrite ? "Add the first member." : null));
    replace(body, table("Team members", ["Email", "Name", "Role", "Added", "Last login", h("span.sr-only", null, "Actions")], users.map((u) => {
      const self = me.user?.id === u.id;
      const role = canWrite && !self
        ? h("select.small", { "aria-label": `Role of ${u.email}`, onchange: (e) => changeRole(u, e.target) },
          ROLES.map(([r]) => h("option", { value: r, selected: r === u.role }, r)))
        : badge(u.role, "role");
      return h("tr", { "data-email": u.email },
        h("th", { scope: "row" }, u.email, self ? h("span.muted", null, " (you)") : null),
        h("td", null, u.name || "—"),
        h("td", null, role),
        h("td", null, dateTime(u.created_at)),
        h("td", null, u.last_login_at ? dateTime(u.last_login_at) : "never"),
        h("td.row-actions", null, canWrite && !self
          ? h("button.small.danger", { type: "button", "aria-label": `Remove ${u.email}`, onclick: () => remove(u) }, "Remove") : null));
    })), h("details.more", null, h("summary", null, "What roles allow"),
      h("ul", null, ROLES.map(([r, d]) => h("li", null, h("strong", null, r), d.slice(r.length))))));
  }

  async function changeRole(u, select) {
    try {
      await patch(`/v1/users/${u.id}`, { role: select.value });
      toast(`${u.email} is now ${select.value}`);
      u.role = select.value;
    } catch (err) {
      select.value = u.role;
      replace(banner, errorBanner(err));
    }
  }

  async function remove(u) {
    if (!await confirmDialog(`Remove ${u.email}?`, "They can no longer log in; keys they created keep working until revoked.", "Remove member")) return;
    try {
      await del(`/v1/users/${u.id}`);
      toast(`${u.email} removed`);
    } catch (err) {
      replace(banner, errorBanner(err));
    }
    load();
  }

  async function onAdd() {
    const u = await formDialog("Add a team member", [
      field("Email", h("input", { type: "email", name: "email", required: true, autocomplete: "off", autofocus: true })),
      field("Name", h("input", { name: "name", autocomplete: "off" })),
      field("Initial password", h("input", { type: "password", name: "password", required: true, minLength: 8, autocomplete: "new-password" }), "Share it with them safely; they can change it later."),
      field("Role", h("select", { name: "role" }, ROLES.map(([r, d]) => h("option", { value: r, selected: r === "member" }, d)))),
    ], "Add member", (fd) => post("/v1/users", Object.fromEntries(fd)));
    if (u) { toast(`${u.email} added`); load(); }
  }

  await load();
}
