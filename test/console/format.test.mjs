// Unit tests of the console's formatting and parsing helpers (no browser, no server).
import { test } from "node:test";
import assert from "node:assert/strict";
import { duration, bytes, kv, left } from "../../web/src/format.js";

test("duration renders milliseconds compactly", () => {
  for (const [ms, want] of [
    [0, "0 s"], [44_600, "45 s"], [60_000, "1 min"], [59 * 60_000, "59 min"],
    [3_600_000, "1 h"], [3_660_000, "1 h 1 min"], [47 * 3_600_000, "47 h"], [50 * 3_600_000, "2 d 2 h"],
    [-5000, "0 s"], [NaN, "—"],
  ]) assert.equal(duration(ms), want, `duration(${ms})`);
});

test("left says when a sandbox ends", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(left("2026-01-01T00:10:00Z", now), "10 min");
  assert.equal(left("2025-12-31T23:59:00Z", now), "ending");
  assert.equal(left(undefined, now), "—");
});

test("bytes uses binary units", () => {
  for (const [n, want] of [[0, "0 B"], [1023, "1023 B"], [1024, "1.0 KiB"], [65536, "64 KiB"], [11 * 1048576, "11 MiB"], [2.5 * 1073741824, "2.5 GiB"], [undefined, "—"]]) {
    assert.equal(bytes(n), want, `bytes(${n})`);
  }
});

test("kv parses KEY=value lines and says which line is wrong", () => {
  assert.deepEqual(kv("A=1\n\n# comment\n B = two=2 \nEMPTY=", "Env"), { A: "1", B: " two=2", EMPTY: "" });
  assert.throws(() => kv("A=1\noops", "Metadata"), /Metadata, line 2: write KEY=value \(got "oops"\)/);
  assert.throws(() => kv("=x", "Env"), /line 1/);
});

test("csrfToken reads the __Host- cookie over HTTPS and the plain one over HTTP", async () => {
  const { csrfToken } = await import("../../web/src/api.js");
  const jar = "warren_csrf=plain; __Host-warren_csrf=hosted%3D; other=1";
  for (const [protocol, cookie, want] of [
    ["https:", jar, "hosted="],
    ["http:", jar, "plain"],
    ["https:", "warren_csrf=planted", ""], // a plain cookie means nothing over HTTPS
    ["http:", "", ""],
  ]) {
    globalThis.location = { protocol };
    globalThis.document = { cookie };
    assert.equal(csrfToken(), want, `${protocol} ${cookie}`);
  }
  delete globalThis.location;
  delete globalThis.document;
});
