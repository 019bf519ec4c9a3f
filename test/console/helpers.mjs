// Shared set-up for the console's browser tests: the admin API client, the browser, and
// screenshots into WARREN_ARTIFACTS_DIR.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

export const baseURL = (process.env.WARREN_CONSOLE_URL || "").replace(/\/$/, "");
export const adminKey = process.env.WARREN_ADMIN_KEY || "";
export const artifacts = resolve(process.env.WARREN_ARTIFACTS_DIR || "test-artifacts/console");
export const chromiumPath = process.env.WARREN_CHROMIUM || "/usr/bin/chromium";

if (!baseURL || !adminKey) {
  throw new Error("set WARREN_CONSOLE_URL (a running warren serve) and WARREN_ADMIN_KEY (its admin key) to run the console tests");
}
mkdirSync(artifacts, { recursive: true });

/**
 * api calls /v1 with key (default: the platform admin key) and returns the decoded body;
 * it throws unless the status is one of want.
 */
export async function api(method, path, body, want = [200, 201, 204], key = adminKey) {
  const resp = await fetch(baseURL + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await resp.text();
  if (!want.includes(resp.status)) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * setupTeam makes a team on the pay-as-you-go plan with an owner, a viewer and an admin
 * API key of the team's own (the platform admin key does not reach into teams' sandboxes).
 */
export async function setupTeam() {
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const team = await api("POST", "/v1/teams", { name: `Console ${tag}` });
  const plans = (await api("GET", "/v1/plans")).plans || [];
  const plan = plans.find((p) => p.id === "payg") || plans[0];
  if (plan) await api("PATCH", `/v1/teams/${team.id}`, { plan_id: plan.id });
  const owner = { email: `owner-${tag}@example.test`, password: `owner-pw-${tag}`, role: "owner", name: "Olive Owner" };
  const viewer = { email: `viewer-${tag}@example.test`, password: `viewer-pw-${tag}`, role: "viewer", name: "Vic Viewer" };
  for (const u of [owner, viewer]) u.id = (await api("POST", "/v1/users", { ...u, team_id: team.id })).id;
  const key = (await api("POST", "/v1/keys", { name: "console-tests", team_id: team.id, scopes: ["admin"], expires_in: 3600 })).key;
  const teamApi = (method, path, body, want) => api(method, path, body, want, key);
  return { team, owner, viewer, key, teamApi };
}

/** launch starts headless Debian chromium (never a downloaded browser). */
export function launch() {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

/** newPage opens a 1280x800 page that records page errors and console errors. */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 }, acceptDownloads: true, colorScheme: "light", ...opts });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseURL });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => { if (msg.type() === "error") page.errors.push(`console: ${msg.text()}`); });
  page.setDefaultTimeout(20_000);
  return page;
}

const shots = [];

/** shot saves a full-page screenshot as NAME.png in the artifacts directory. */
export async function shot(page, name) {
  const file = join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
  return file;
}

/** login logs in through the login form and waits for the sandboxes page. */
export async function login(page, user) {
  await page.goto("/#/login");
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { level: 1, name: "Sandboxes" }).waitFor();
}

/** eventually retries fn until it stops throwing or the deadline passes. */
export async function eventually(fn, { timeout = 30_000, interval = 500 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}
