// Entry point: session bootstrap, the app shell (top bar, navigation, theme toggle) and a
// tiny hash router. Hash routes (#/sandboxes) keep the console's URLs clear of the API's
// own paths (/sandboxes belongs to the E2B API on the same listener).
import "./styles.css";
import { h, replace } from "./dom.js";
import { get, post, setUnauthorizedHandler, ApiError } from "./api.js";
import { errorBanner, loading } from "./ui.js";

const routes = [
  { re: /^\/login$/, load: () => import("./pages/login.js"), public: true, title: "Log in" },
  { re: /^\/sandboxes$/, load: () => import("./pages/sandboxes.js"), title: "Sandboxes", nav: "sandboxes" },
  { re: /^\/sandboxes\/([a-z0-9]+)(?:\/([a-z]+))?$/, load: () => import("./pages/sandbox.js"), title: "Sandbox", nav: "sandboxes" },
  { re: /^\/templates$/, load: () => import("./pages/templates.js"), title: "Templates", nav: "templates" },
  { re: /^\/templates\/([^/]+)$/, load: () => import("./pages/template.js"), title: "Template", nav: "templates" },
  { re: /^\/templates\/([^/]+)\/builds\/([^/]+)$/, load: () => import("./pages/template-build.js"), title: "Template build", nav: "templates" },
  { re: /^\/keys$/, load: () => import("./pages/keys.js"), title: "API keys", nav: "keys", scope: "keys:read" },
  { re: /^\/usage$/, load: () => import("./pages/usage.js"), title: "Usage & billing", nav: "usage", scope: "usage:read" },
  { re: /^\/team$/, load: () => import("./pages/team.js"), title: "Team", nav: "team", scope: "team:read" },
  { re: /^\/teams$/, load: () => import("./pages/teams.js"), title: "Teams", nav: "teams", scope: "team:read" },
  { re: /^\/audit$/, load: () => import("./pages/audit.js"), title: "Audit log", nav: "audit", scope: "audit:read" },
];

const navItems = [
  ["sandboxes", "Sandboxes", null],
  ["templates", "Templates", null],
  ["keys", "API keys", "keys:read"],
  ["usage", "Usage & billing", "usage:read"],
  ["team", "Team", "team:read"],
  ["teams", "Teams", "team:read"],
  ["audit", "Audit log", "audit:read"],
];

/** app is the session: who is logged in and what they may do. */
const app = {
  me: null,
  can(scope) {
    const sc = this.me?.scopes || [];
    return !!this.me && (this.me.admin || sc.includes("admin") || sc.includes(scope));
  },
};

const root = document.getElementById("app");
let current = null; // {controller, cleanups}
let shell = null;
let firstRender = true; // on a fresh load focus stays at the top (skip link first)

/** navigate changes the route. */
export function navigate(path) {
  location.hash = `#${path}`;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/sandboxes";
  const [path, query] = raw.split("?");
  return { path, query: new URLSearchParams(query || "") };
}

setUnauthorizedHandler(() => {
  app.me = null;
  const { path } = parseHash();
  if (path !== "/login") navigate(`/login?next=${encodeURIComponent(path)}`);
});

async function loadMe() {
  try {
    app.me = await get("/v1/me", { noRedirect: true });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    app.me = null;
  }
  return app.me;
}

async function render() {
  if (current) {
    current.controller.abort();
    current.cleanups.forEach((fn) => { try { fn(); } catch { /* best effort */ } });
  }
  const cleanups = [];
  const controller = new AbortController();
  current = { controller, cleanups };
  const { path, query } = parseHash();
  const route = routes.find((r) => r.re.test(path));
  if (!route) return navigate("/sandboxes");

  if (!route.public && !app.me) {
    replace(root, loading("Loading the console"));
    try {
      await loadMe();
    } catch (err) {
      replace(root, h("main.center", { id: "main" }, errorBanner(err, render)));
      return;
    }
    if (controller.signal.aborted) return;
    if (!app.me) return navigate(`/login?next=${encodeURIComponent(path)}`);
  }
  document.title = `${route.title} · Warren`;
  let main;
  if (route.public) {
    shell = null;
    main = h("main.center", { id: "main", tabIndex: -1 });
    replace(root, main);
  } else {
    if (!shell) shell = buildShell();
    main = shell.main;
    shell.setActive(route.nav);
    shell.closeMenu();
    replace(main, loading());
  }
  const ctx = {
    main,
    params: path.match(route.re).slice(1),
    query,
    app,
    can: (s) => app.can(s),
    signal: controller.signal,
    cleanup: (fn) => cleanups.push(fn),
    navigate,
    reloadMe: loadMe,
    afterLogin: async () => { await loadMe(); navigate(query.get("next") || "/sandboxes"); },
  };
  try {
    if (route.scope && !app.can(route.scope)) {
      replace(main, errorBanner(new Error(`Your role does not include ${route.scope}, which this page needs. Ask a team owner or admin.`)));
      return;
    }
    const mod = await route.load();
    if (controller.signal.aborted) return;
    await mod.default(ctx);
  } catch (err) {
    if (err.name === "AbortError" || controller.signal.aborted) return;
    replace(main, errorBanner(err, render));
  }
  // After a navigation, move focus to the new page's title so screen readers announce it.
  const title = main.querySelector("#page-title");
  if (title && !firstRender && (document.activeElement === document.body || !document.activeElement?.isConnected)) title.focus({ preventScroll: true });
  firstRender = false;
}

function buildShell() {
  const links = new Map();
  const nav = h("nav.sidenav", { id: "sidenav", "aria-label": "Main" }, h("ul", null,
    navItems.filter(([, , scope]) => !scope || app.can(scope)).map(([key, label]) => {
      const a = h("a", { href: `#/${key}` }, label);
      links.set(key, a);
      return h("li", null, a);
    })));
  const menu = h("button.icon.menu-btn", {
    type: "button", "aria-controls": "sidenav", "aria-expanded": "false", "aria-label": "Menu",
    onclick: () => setMenu(menu.getAttribute("aria-expanded") !== "true"),
  }, "☰");
  const setMenu = (open) => {
    menu.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  };
  const main = h("main.content", { id: "main", tabIndex: -1 });
  const themeBtn = h("button.icon", { type: "button", onclick: () => toggleTheme(themeBtn) });
  labelTheme(themeBtn);
  const me = app.me;
  const who = me.user ? me.user.email : me.key_id ? `key ${me.key_id}` : "admin";
  const el = h("div.shell", null,
    h("a.skip", { href: "#main", onclick: (e) => { e.preventDefault(); main.focus(); } }, "Skip to content"),
    h("header.topbar", null, menu,
      h("a.brand", { href: "#/sandboxes" }, h("span.logo", { "aria-hidden": "true" }, "◆"), "Warren"),
      h("span.team", { title: "Team" }, me.team?.name || ""),
      h("span.spacer"),
      h("span.who.muted", null, who, me.user ? h("span.role", null, me.user.role) : null),
      themeBtn,
      h("button", { type: "button", onclick: logout }, "Log out")),
    h("div.body", null, nav, main),
    h("div.toasts", { id: "toasts", "aria-live": "polite" }));
  replace(root, el);
  return {
    main,
    closeMenu: () => setMenu(false),
    setActive(key) {
      for (const [k, a] of links) {
        if (k === key) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
    },
  };
}

async function logout() {
  try { await post("/console/logout", {}, { noRedirect: true }); } catch { /* the session may already be gone */ }
  app.me = null;
  shell = null;
  navigate("/login");
}

function currentTheme() {
  return document.documentElement.dataset.theme ||
    (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

function labelTheme(btn) {
  const dark = currentTheme() === "dark";
  btn.textContent = dark ? "☀" : "☾";
  btn.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
  btn.title = btn.getAttribute("aria-label");
}

function toggleTheme(btn) {
  const next = currentTheme() === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  try { localStorage.setItem("warren-theme", next); } catch { /* private mode */ }
  labelTheme(btn);
}

addEventListener("hashchange", render);
render();
