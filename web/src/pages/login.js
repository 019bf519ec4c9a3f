// The login page: email and password, POST /console/login sets the session cookies.
import { h, replace } from "../dom.js";
import { request } from "../api.js";
import { errorBanner, field } from "../ui.js";

export default function login(ctx) {
  const err = h("div", { "aria-live": "assertive" });
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "username", autofocus: true });
  const password = h("input", { type: "password", name: "password", required: true, autocomplete: "current-password" });
  const btn = h("button.primary.wide", { type: "submit" }, "Log in");
  const form = h("form.form", {
    onsubmit: async (e) => {
      e.preventDefault();
      btn.disabled = true;
      btn.textContent = "Logging in…";
      replace(err);
      try {
        await request("POST", "/console/login", { email: email.value, password: password.value }, { noRedirect: true });
        await ctx.afterLogin();
      } catch (e2) {
        if (e2.status === 401) e2.message = "Wrong email or password. Check them and try again, or ask a team owner to reset your password.";
        replace(err, errorBanner(e2));
        password.select();
      } finally {
        btn.disabled = false;
        btn.textContent = "Log in";
      }
    },
  },
  field("Email", email),
  field("Password", password),
  err, btn);
  replace(ctx.main, h("section.login-card", { "aria-labelledby": "page-title" },
    h("div.brand.big", null, h("span.logo", { "aria-hidden": "true" }, "◆"), "Warren"),
    h("h1", { id: "page-title", tabIndex: -1 }, "Log in to the console"),
    form,
    h("p.muted.small", null, "Accounts are created by a team owner or admin (warren users add, or the Team page).")));
  email.focus();
}
