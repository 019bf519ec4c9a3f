// Pause, resume and fork from the web console in a real browser against a real `warren
// serve`: a running sandbox is paused from its row (the state badge says paused, its file
// is kept), a refused pause shows the server's message, it is resumed from its page and
// forked into two copies, whose links the page shows.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setupTeam, launch, newPage, shot, login } from "./helpers.mjs";

const appErrors = (page) => page.errors.filter((e) => !e.includes("Failed to load resource"));

describe("web console: pause, resume and fork", () => {
  let browser, page, setup, sb;
  const made = [];

  before(async () => {
    setup = await setupTeam();
    sb = await setup.teamApi("POST", "/v1/sandboxes", { template: "base", timeout: 900, metadata: { purpose: "console-pause" } });
    made.push(sb.id);
    browser = await launch();
    page = await newPage(browser);
    await login(page, setup.owner);
  });

  after(async () => {
    for (const id of made) await setup.teamApi("DELETE", `/v1/sandboxes/${id}`, undefined, [204, 404, 409]).catch(() => {});
    await browser?.close();
  });

  it("pauses a sandbox from its row and shows it paused", async () => {
    await writeFile(setup, sb.id, "/home/user/kept.txt", "kept across pause\n");
    const row = page.locator(`tr[data-id="${sb.id}"]`);
    await row.getByText("running").waitFor();
    await row.getByRole("button", { name: `Pause ${sb.id}` }).click();
    await row.locator(".badge.b-paused").filter({ hasText: "paused" }).waitFor({ timeout: 120_000 });
    await row.getByRole("button", { name: `Resume ${sb.id}` }).waitFor();
    assert.equal(await row.getByRole("button", { name: `Pause ${sb.id}` }).count(), 0, "a paused sandbox offers no Pause");
    const got = await setup.teamApi("GET", `/v1/sandboxes/${sb.id}`);
    assert.equal(got.state, "paused");
    await page.getByLabel("State").selectOption("paused");
    await row.waitFor();
    await shot(page, "30-sandbox-paused");
    await page.getByLabel("State").selectOption("live");
  });

  it("shows the server's message when a pause is refused", async () => {
    await page.getByRole("link", { name: sb.id }).click();
    await page.getByRole("heading", { level: 1, name: new RegExp(sb.id) }).waitFor();
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator("h1 .badge.b-running").waitFor({ timeout: 120_000 });
    assert.equal(await readFile(setup, sb.id, "/home/user/kept.txt"), "kept across pause\n", "the file is kept");
    // Paused behind the page's back: the page still offers Pause, and the 409 is shown.
    await setup.teamApi("POST", `/v1/sandboxes/${sb.id}/pause`);
    await page.getByRole("button", { name: "Pause" }).click();
    await page.getByRole("alert").filter({ hasText: `Could not pause ${sb.id}` }).waitFor();
    await page.locator("h1 .badge.b-paused").waitFor({ timeout: 30_000 });
    await shot(page, "31-sandbox-pause-refused");
  });

  it("resumes the sandbox from its page and forks it into two", async () => {
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator("h1 .badge.b-running").waitFor({ timeout: 120_000 });
    await page.getByRole("button", { name: "Fork" }).click();
    const dialog = page.getByRole("dialog", { name: `Fork sandbox ${sb.id}` });
    await dialog.getByLabel("Copies").fill("2");
    await dialog.getByRole("button", { name: "Fork" }).click();
    await dialog.waitFor({ state: "detached", timeout: 180_000 });
    const links = page.locator("div.banner a.mono");
    await links.nth(1).waitFor();
    const ids = await links.allTextContents();
    made.push(...ids);
    assert.equal(ids.length, 2);
    for (const id of ids) {
      assert.match(id, /^[a-z0-9]{20}$/);
      assert.notEqual(id, sb.id);
      assert.equal(await readFile(setup, id, "/home/user/kept.txt"), "kept across pause\n", "a fork has the parent's files");
    }
    await shot(page, "32-sandbox-forked");
    assert.deepEqual(appErrors(page), []);
  });
});

async function writeFile(setup, id, path, text) {
  const resp = await fetch(`${process.env.WARREN_CONSOLE_URL.replace(/\/$/, "")}/v1/sandboxes/${id}/files/content?path=${encodeURIComponent(path)}`, {
    method: "PUT", headers: { Authorization: `Bearer ${setup.key}` }, body: text,
  });
  assert.equal(resp.status, 200, await resp.text());
}

async function readFile(setup, id, path) {
  const resp = await fetch(`${process.env.WARREN_CONSOLE_URL.replace(/\/$/, "")}/v1/sandboxes/${id}/files/content?path=${encodeURIComponent(path)}`, {
    headers: { Authorization: `Bearer ${setup.key}` },
  });
  assert.equal(resp.status, 200);
  return resp.text();
}
