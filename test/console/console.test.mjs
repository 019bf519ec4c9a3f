// The web console end to end in a real browser (Debian chromium, headless, driven by
// playwright-core) against a real `warren serve`: log in, create a sandbox, use its
// terminal and file browser, follow a template build's log live and see its steps and
// a failed build's reason, create and revoke an API key, see usage, kill the sandbox,
// and check what a viewer may do. Every page is screenshotted at 1280 px.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { setupTeam, launch, newPage, shot, login, eventually, api, adminKey } from "./helpers.mjs";

// appErrors are the page's errors other than failed HTTP statuses, which the console
// handles itself (the login page's 401 probe, the 403s asked for below).
const appErrors = (page) => page.errors.filter((e) => !e.includes("Failed to load resource"));

describe("web console", () => {
  let browser, page, setup, sandboxId;
  const tplName = `console-tpl-${randomBytes(3).toString("hex")}`;

  before(async () => {
    setup = await setupTeam();
    browser = await launch();
    page = await newPage(browser);
  });

  after(async () => {
    if (sandboxId) await setup.teamApi("DELETE", `/v1/sandboxes/${sandboxId}`, undefined, [204, 404]).catch(() => {});
    if (setup) await setup.teamApi("DELETE", `/v1/templates/${tplName}`, undefined, [204, 404]).catch(() => {});
    await browser?.close();
  });

  it("refuses a wrong password with a message, then logs in", async () => {
    await page.goto("/");
    await page.getByRole("heading", { name: "Log in to the console" }).waitFor();
    assert.match(page.url(), /#\/login/, "an unauthenticated visit goes to the login page");
    await shot(page, "01-login");
    await page.getByLabel("Email").fill(setup.owner.email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong email or password" }).waitFor();
    await login(page, setup.owner);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "warren_session");
    assert.ok(session?.httpOnly, "the session cookie is HttpOnly");
    assert.equal(await page.evaluate(() => document.cookie.includes("warren_session")), false, "scripts cannot read the session");
  });

  it("creates a sandbox from the create dialog and lists it live", async () => {
    await page.getByRole("button", { name: "Create sandbox" }).first().click();
    const dialog = page.getByRole("dialog", { name: "Create a sandbox" });
    await dialog.waitFor();
    await dialog.getByLabel("Template").selectOption("base");
    await dialog.getByLabel("Timeout (minutes)").fill("20");
    await dialog.getByText("Environment, metadata and limits").click();
    await dialog.getByLabel("Environment variables").fill("GREETING=hello");
    await dialog.getByLabel("Metadata").fill("purpose=console-e2e");
    await dialog.getByLabel("Memory (MiB)").fill("512");
    await shot(page, "02-create-dialog");
    await dialog.getByRole("button", { name: "Create sandbox" }).click();
    await dialog.waitFor({ state: "detached", timeout: 120_000 });
    const row = page.locator("tr[data-id]").filter({ hasText: "purpose=console-e2e" });
    await row.waitFor();
    sandboxId = await row.getAttribute("data-id");
    assert.match(sandboxId, /^[a-z0-9]{20}$/);
    await row.getByText("running").waitFor();
    // The list polls metrics: the sparklines fill in within a few polls.
    await page.waitForFunction((id) => {
      const line = document.querySelector(`tr[data-id="${id}"] svg.spark.mem .spark-line`);
      return line && line.getAttribute("points").split(" ").length >= 3;
    }, sandboxId, { timeout: 30_000 });
    assert.match(await row.locator("td.metric").nth(1).textContent(), /\d+(\.\d)? MiB/, "the memory column shows the latest sample");
    for (const col of ["base", "purpose=console-e2e"]) assert.ok((await row.textContent()).includes(col));
    await page.getByLabel("Search").fill("console-e2e");
    await assert.doesNotReject(row.waitFor());
    await page.getByLabel("Search").fill("no-such-sandbox-xyz");
    await page.getByText("No sandbox matches the filter.").waitFor();
    await page.getByLabel("Search").fill("");
    await row.waitFor();
    await shot(page, "03-sandboxes");
  });

  it("shows the sandbox's details and metrics charts", async () => {
    await page.getByRole("link", { name: sandboxId }).click();
    await page.getByRole("heading", { level: 1, name: new RegExp(sandboxId) }).waitFor();
    await page.getByRole("tab", { name: "Overview", selected: true }).waitFor();
    await page.getByText("purpose=console-e2e").waitFor();
    await page.locator("figure.chart-box svg.mem polyline.line").waitFor({ state: "attached", timeout: 30_000 });
    await page.getByText(/ of \d+ cores/).waitFor();
    await page.getByRole("button", { name: "Extend" }).click();
    const extend = page.getByRole("dialog", { name: `Extend sandbox ${sandboxId}` });
    await extend.getByLabel("New time left").selectOption({ label: "2 hours" });
    await extend.getByRole("button", { name: "Set timeout" }).click();
    await extend.waitFor({ state: "detached" });
    await page.getByText(/\(in (1 h 5\d min|2 h)\)/).waitFor();
    await shot(page, "04-sandbox-overview");
  });

  it("runs echo hello in the terminal", async () => {
    await page.getByRole("tab", { name: "Terminal" }).click();
    await page.getByText("Connected", { exact: true }).waitFor({ timeout: 30_000 });
    await page.locator(".term").click();
    await page.keyboard.type("echo hello");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => [...document.querySelectorAll(".xterm-rows > div")].some((d) => d.textContent.trim() === "hello"), null, { timeout: 20_000 });
    // Resizing the window refits the terminal and tells the PTY: `stty size` follows.
    await page.setViewportSize({ width: 1000, height: 800 });
    await page.waitForTimeout(500);
    await page.keyboard.type("stty size");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => [...document.querySelectorAll(".xterm-rows > div")].some((d) => /^\d+ \d+$/.test(d.textContent.trim())), null, { timeout: 20_000 });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.waitForTimeout(300);
    await shot(page, "05-sandbox-terminal");
  });

  it("uploads a file, lists it and downloads it byte-identical", async () => {
    await page.getByRole("tab", { name: "Files" }).click();
    await page.getByRole("table", { name: /Files in \/home\/user/ }).or(page.getByText("This directory is empty.")).waitFor();
    const content = Buffer.concat([Buffer.from("console upload \u00e9\n"), randomBytes(64 * 1024), Buffer.from([0, 255, 254, 0])]);
    await page.locator("#upload-input").setInputFiles({ name: "console-upload.bin", mimeType: "application/octet-stream", buffer: content });
    const row = page.locator('tr[data-name="console-upload.bin"]');
    await row.waitFor();
    assert.match(await row.textContent(), /64(\.0)? KiB/);
    const [download] = await Promise.all([page.waitForEvent("download"), row.getByRole("button", { name: /Download/ }).click()]);
    assert.equal(download.suggestedFilename(), "console-upload.bin");
    const got = await readFile(await download.path());
    assert.ok(got.equals(content), `downloaded ${got.length} bytes differ from the ${content.length} uploaded`);
    await shot(page, "06-sandbox-files");
  });

  it("streams the sandbox's logs", async () => {
    await page.getByRole("tab", { name: "Logs" }).click();
    await page.getByText(/Streaming|No log lines yet/).first().waitFor();
    await page.getByText(/^Streaming/).waitFor({ timeout: 15_000 });
    // A command run now shows up in the open stream (the agent logs each process's end).
    const ended = page.locator("ol.logs li").filter({ hasText: "process ended" });
    await page.waitForTimeout(500);
    const before = await ended.count();
    await setup.teamApi("POST", `/v1/sandboxes/${sandboxId}/commands`, { cmd: "exit 3" });
    await eventually(async () => assert.ok(await ended.count() > before, "a new line arrived"), { timeout: 20_000 });
    await ended.filter({ hasText: "exit status 3" }).waitFor();
    await shot(page, "07-sandbox-logs");
  });

  it("lists templates and shows one", async () => {
    await page.getByRole("link", { name: "Templates" }).click();
    await page.getByRole("heading", { level: 1, name: "Templates" }).waitFor();
    await page.locator('tr[data-id="base"]').getByText("ready").waitFor();
    await shot(page, "08-templates");
    await page.getByRole("link", { name: "base", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: /Template base/ }).waitFor();
    await page.getByRole("link", { name: sandboxId }).waitFor();
    await shot(page, "09-template-detail");
  });

  it("lists the team's templates with their builds, and follows a build's log live", { timeout: 300_000 }, async () => {
    // A build whose first step prints, then waits: its log must reach the page while it
    // runs. (The template's name in the step keeps it out of the layer cache of a server
    // that ran this test before; the output, "started-42", is not the command's text,
    // which the log shows too.)
    const firstStep = `echo started-$((6*7)) ${tplName}; sleep 8; echo finished-$((6*7))`;
    const started = await setup.teamApi("POST", "/v1/templates", {
      name: tplName, from_template: "base",
      steps: [{ type: "RUN", args: [firstStep] }, { type: "RUN", args: ["echo second step"] }],
    }, [202]);
    const buildId = started.build.id;
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Templates" }).click();
    const row = page.locator(`tr[data-id="${tplName}"]`);
    await row.locator(".badge", { hasText: "team" }).waitFor();
    await page.locator('tr[data-id="base"] .badge', { hasText: "built-in" }).waitFor();
    await row.getByRole("link", { name: tplName }).click();
    await page.getByRole("heading", { level: 1, name: new RegExp(`Template ${tplName}`) }).waitFor();
    await page.locator(`tr[data-id="${buildId}"]`).getByRole("link", { name: buildId }).click();
    await page.getByRole("heading", { level: 1, name: new RegExp(`Build ${buildId}`) }).waitFor();
    const log = page.getByRole("log", { name: "Build log" });
    await log.getByText("started-42").waitFor({ timeout: 120_000 });
    const mid = await setup.teamApi("GET", `/v1/templates/${tplName}/builds/${buildId}`);
    assert.equal(mid.state, "building", "the line arrived while the build ran");
    assert.equal(await log.getByText("finished-42").count(), 0, "the step's later output is not there yet");
    await shot(page, "10-template-build-live");
    await log.getByText("finished-42").waitFor({ timeout: 120_000 });
    await page.getByRole("status").filter({ hasText: "The build has ended" }).waitFor({ timeout: 120_000 });
    await page.locator("h1 .badge").filter({ hasText: "ready" }).waitFor();
    const steps = page.getByRole("table", { name: "Steps" }).locator("tbody tr");
    assert.equal(await steps.count(), 2, "both steps are listed");
    assert.match(await steps.first().textContent(), /ran/);
    await shot(page, "11-template-build-done");

    // A failing build: the template's page shows it go from running to error with its reason.
    const bad = await setup.teamApi("POST", "/v1/templates", {
      name: tplName, from_template: "base",
      steps: [{ type: "RUN", args: [firstStep] }, { type: "RUN", args: ["echo broken >&2; exit 3"] }],
    }, [202]);
    await page.getByRole("link", { name: tplName, exact: true }).click();
    const badRow = page.locator(`tr[data-id="${bad.build.id}"]`);
    await badRow.waitFor();
    await badRow.locator(".badge", { hasText: "error" }).waitFor({ timeout: 120_000 });
    assert.match(await badRow.textContent(), /exit code 3/, "the reason names the exit code");
    // Steps (cached): the first build ran both; the failed one took step 1 from the cache
    // and has no result for the step that failed.
    assert.match(await page.locator(`tr[data-id="${buildId}"]`).textContent(), /ready.*2 \(0\)/s);
    assert.match(await badRow.textContent(), /1 \(1\)/);
    await shot(page, "12-template-builds");
    assert.deepEqual(appErrors(page), []);
  });

  it("creates an API key shown once with a copy button, then revokes it", async () => {
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    await page.getByRole("button", { name: "Create API key" }).click();
    const dialog = page.getByRole("dialog", { name: "Create an API key" });
    await dialog.getByLabel("Name").fill("console-e2e-key");
    await dialog.getByLabel("keys:write").uncheck();
    await dialog.getByLabel("Expires").selectOption({ label: "7 days" });
    await dialog.getByRole("button", { name: "Create key" }).click();
    const shown = page.getByRole("dialog", { name: "Your new API key" });
    await shown.waitFor();
    const secret = await shown.getByLabel("API key secret").inputValue();
    assert.match(secret, /^sk_/);
    const copy = shown.getByRole("button", { name: "Copy" });
    await copy.click();
    await shown.getByRole("button", { name: "Copied" }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "the copy button puts the secret on the clipboard");
    await shot(page, "10-api-key-created");
    // The key works, with the scopes picked.
    const me = await (await fetch(new URL("/v1/me", page.url()), { headers: { Authorization: `Bearer ${secret}` } })).json();
    assert.ok(me.scopes.includes("sandboxes:read") && !me.scopes.includes("keys:write"), `scopes: ${me.scopes}`);
    await shown.getByRole("button", { name: "Done" }).click();
    const row = page.locator('tr[data-name="console-e2e-key"]');
    await row.getByText("active").waitFor();
    assert.equal(await page.getByText(secret).count(), 0, "the secret is not shown again");
    assert.ok((await row.textContent()).includes(secret.slice(0, 8)), "the list shows the key's prefix");
    await row.getByRole("button", { name: /Revoke/ }).click();
    await page.getByRole("dialog", { name: /Revoke key/ }).getByRole("button", { name: "Revoke key" }).click();
    await row.getByText("revoked").waitFor();
    const after = await fetch(new URL("/v1/me", page.url()), { headers: { Authorization: `Bearer ${secret}` } });
    assert.equal(after.status, 401, "a revoked key is refused");
    await shot(page, "11-api-keys");
  });

  it("shows the sandbox's minutes on the usage page", async () => {
    await page.getByRole("link", { name: "Usage & billing" }).click();
    await page.getByRole("heading", { level: 1, name: "Usage & billing" }).waitFor();
    const minutes = await eventually(async () => {
      await page.getByRole("button", { name: "Refresh" }).click();
      const cell = page.locator(`tr[data-id="${sandboxId}"] td.minutes`);
      await cell.waitFor({ timeout: 3000 });
      const v = parseFloat((await cell.textContent()).replace(",", "."));
      assert.ok(v > 0, `minutes shown: ${v}`);
      return v;
    }, { timeout: 90_000, interval: 2000 });
    assert.ok(minutes > 0);
    await page.getByRole("meter", { name: "Running sandboxes" }).waitFor();
    await page.getByRole("heading", { name: "Plan" }).waitFor();
    await page.getByRole("link", { name: "CSV" }).first().waitFor();
    const csv = await page.evaluate(async (href) => (await fetch(href)).text(), await page.getByRole("link", { name: "CSV" }).first().getAttribute("href"));
    assert.match(csv, /,/, "the invoice CSV downloads");
    await page.getByLabel("Over time").selectOption("template");
    await page.locator(".legend, svg.chart rect.bar").first().waitFor();
    await shot(page, "12-usage");
  });

  it("lists team members and the audit log", async () => {
    await page.getByRole("link", { name: "Team", exact: true }).click();
    await page.locator(`tr[data-email="${setup.viewer.email}"]`).waitFor();
    await shot(page, "13-team");
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { level: 1, name: "Audit log" }).waitFor();
    await page.getByRole("table", { name: "Audit log entries" }).waitFor();
    await shot(page, "14-audit");
  });

  it("shows the team's plan and quotas on the Teams page, read-only for members", async () => {
    const team = await setup.teamApi("GET", `/v1/teams/${setup.team.id}`);
    const plans = (await setup.teamApi("GET", "/v1/plans")).plans || [];
    const plan = plans.find((p) => p.id === team.plan_id);
    const sandboxes = team.quota.max_sandboxes > 0 ? new RegExp(` of ${team.quota.max_sandboxes}$`) : /unlimited/;
    const check = async (p) => {
      await p.getByRole("link", { name: "Teams" }).click();
      await p.getByRole("heading", { level: 1, name: "Teams" }).waitFor();
      const card = p.locator(`section[data-id="${team.id}"]`);
      await card.getByRole("heading", { name: team.name }).waitFor();
      if (plan) await card.getByText(`${plan.name} (${plan.id})`).waitFor();
      assert.match(await card.getByRole("meter", { name: "Running sandboxes" }).getAttribute("aria-valuetext"), sandboxes);
      await card.getByRole("meter", { name: "Memory" }).waitFor();
      assert.equal(await p.locator("section[data-id]").count(), 1, "a team member sees only their own team");
      assert.equal(await p.getByRole("button", { name: /Create team|Edit/ }).count(), 0, "only platform admins change teams");
      return card;
    };
    await check(page);
    await shot(page, "20-teams");
    const vpage = await newPage(browser);
    try {
      await login(vpage, setup.viewer);
      await check(vpage);
      assert.deepEqual(appErrors(vpage), [], "no script errors");
    } finally {
      await vpage.context().close();
    }
  });

  it("lets a platform admin create a team and change its quota, plan and spending limit", async () => {
    // Console users are never platform admins: drive the page with the admin key instead.
    const apage = await newPage(browser, { extraHTTPHeaders: { Authorization: `Bearer ${adminKey}` } });
    const name = `Console created ${Date.now().toString(36)}`;
    try {
      await apage.goto("/#/teams");
      await apage.getByRole("heading", { level: 1, name: "Teams" }).waitFor();
      await apage.getByRole("button", { name: "Create team" }).click();
      const create = apage.getByRole("dialog", { name: "Create a team" });
      await create.getByLabel("Name").fill(name);
      await create.getByLabel("Plan").selectOption("payg");
      await create.getByLabel("Running sandboxes").fill("7");
      await create.getByRole("button", { name: "Create team" }).click();
      await create.waitFor({ state: "detached" });
      const card = apage.locator("section[data-id]").filter({ has: apage.getByRole("heading", { name, exact: true }) });
      await card.getByText("Pay as you go (payg)").waitFor();
      const id = await card.getAttribute("data-id");
      const edit = card.getByRole("button", { name: `Edit ${name}` });
      assert.ok(await edit.evaluate((b) => b === document.activeElement), "focus returns to the new team's Edit button");
      await edit.click();
      const dlg = apage.getByRole("dialog", { name: `Edit team ${name}` });
      assert.equal(await dlg.getByLabel("Running sandboxes").inputValue(), "7");
      await dlg.getByLabel("CPU cores").fill("3.5");
      await dlg.getByLabel("Spending limit per month").fill("not money");
      await dlg.getByRole("button", { name: "Save" }).click();
      await dlg.getByRole("alert").filter({ hasText: "spend_limit" }).waitFor(); // the API's message, dialog kept open
      await dlg.getByLabel("Spending limit per month").fill("25");
      await dlg.getByRole("button", { name: "Save" }).click();
      await dlg.waitFor({ state: "detached" });
      await card.getByText(/25.*per month/).waitFor();
      const got = await api("GET", `/v1/teams/${id}`);
      assert.equal(got.quota.max_sandboxes, 7);
      assert.equal(got.quota.max_cpu_cores, 3.5);
      assert.equal(got.spend_limit, "25");
      assert.equal(got.plan_id, "payg");
      assert.deepEqual(appErrors(apage), [], "no script errors");
    } finally {
      await apage.context().close();
    }
  });

  it("a viewer sees no create button and cannot create through the API", async () => {
    const vpage = await newPage(browser);
    try {
      await login(vpage, setup.viewer);
      const row = vpage.locator(`tr[data-id="${sandboxId}"]`);
      await row.getByText("running").waitFor();
      assert.equal(await vpage.getByRole("button", { name: "Create sandbox" }).count(), 0, "no Create button for viewers");
      assert.equal(await row.getByRole("button").count(), 0, "no Kill or Extend for viewers");
      assert.equal(await vpage.getByRole("link", { name: "API keys" }).count(), 0, "no API keys page for viewers");
      await shot(vpage, "15-viewer-sandboxes");
      const res = await vpage.evaluate(async () => {
        const csrf = decodeURIComponent(document.cookie.match(/warren_csrf=([^;]*)/)?.[1] || "");
        const r = await fetch("/v1/sandboxes", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: "{}" });
        return { status: r.status, body: await r.json(), csrf };
      });
      assert.ok(res.csrf, "the CSRF cookie is readable");
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.code, "forbidden");
      const noCsrf = await vpage.evaluate(async () => (await fetch("/v1/sandboxes", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}" })).status);
      assert.equal(noCsrf, 403, "a state change without the CSRF header is refused");
      await row.getByRole("link", { name: sandboxId }).click();
      await vpage.getByRole("tab", { name: "Files" }).waitFor();
      assert.equal(await vpage.getByRole("tab", { name: "Terminal" }).count(), 0, "no terminal for viewers");
      assert.deepEqual(appErrors(vpage), [], "no script errors");
    } finally {
      await vpage.context().close();
    }
  });

  it("works on a narrow screen: the navigation collapses behind a menu", async () => {
    try {
      await page.setViewportSize({ width: 400, height: 800 });
      const nav = page.getByRole("navigation", { name: "Main" });
      await assert.rejects(nav.getByRole("link", { name: "Templates" }).click({ timeout: 1000 }), "the nav is hidden on narrow screens");
      const menu = page.getByRole("button", { name: "Menu" });
      await menu.click();
      assert.equal(await menu.getAttribute("aria-expanded"), "true");
      await nav.getByRole("link", { name: "Templates" }).waitFor();
      await shot(page, "16-narrow-menu");
      await nav.getByRole("link", { name: "Sandboxes" }).click();
      await page.getByRole("heading", { level: 1, name: "Sandboxes" }).waitFor();
      assert.equal(await menu.getAttribute("aria-expanded"), "false", "following a link closes the menu");
      await page.locator(`tr[data-id="${sandboxId}"]`).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
      // No row may be wider than the screen either (rows stack into cards).
      const rowWidth = await page.locator(`tr[data-id="${sandboxId}"]`).evaluate((tr) => tr.getBoundingClientRect().width);
      assert.ok(rowWidth <= 400, `a sandbox row is ${rowWidth}px wide`);
      await shot(page, "17-narrow-sandboxes");
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  it("switches to the dark theme and remembers it", async () => {
    await page.getByRole("button", { name: "Switch to the dark theme" }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Sandboxes" }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("warren-theme")), "dark");
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
    await page.getByRole("link", { name: "Usage & billing" }).click();
    await page.getByRole("heading", { name: "By sandbox" }).waitFor();
    await shot(page, "18-dark-usage");
    await page.getByRole("button", { name: "Switch to the light theme" }).click();
  });

  it("kills the sandbox after confirmation and it leaves the list", async () => {
    await page.getByRole("link", { name: "Sandboxes" }).click();
    const row = page.locator(`tr[data-id="${sandboxId}"]`);
    await row.getByRole("button", { name: `Kill ${sandboxId}` }).click();
    const dialog = page.getByRole("dialog", { name: `Kill sandbox ${sandboxId}?` });
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await row.waitFor(); // cancelling keeps it
    await row.getByRole("button", { name: `Kill ${sandboxId}` }).click();
    await dialog.getByRole("button", { name: "Kill sandbox" }).click();
    await row.waitFor({ state: "detached", timeout: 30_000 });
    const left = await setup.teamApi("GET", `/v1/sandboxes/${sandboxId}`, undefined, [200, 404]);
    assert.ok(left.code === "not_found" || left.state === "stopped", `after kill: ${JSON.stringify(left)}`);
    await shot(page, "19-sandboxes-after-kill");
  });

  it("is keyboard navigable with a skip link and visible focus", async () => {
    await page.goto("/#/templates");
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Templates" }).waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, "none", "the focused element shows a focus ring");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "main", "the skip link moves focus to the content");
    // From the content, Tab reaches the first link and Enter follows it.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "base");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: /Template base/ }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "page-title", "after navigating, focus moves to the new page's title");
  });

  it("logs out, and a page needing a session goes back to the login page", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Log in to the console" }).waitFor();
    await page.goto("/#/keys");
    await page.getByRole("heading", { name: "Log in to the console" }).waitFor();
    assert.match(page.url(), /next=%2Fkeys/);
    assert.deepEqual(appErrors(page), [], "no script errors and no CSP violations");
  });

});
