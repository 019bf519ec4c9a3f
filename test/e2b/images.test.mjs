// Template builds from OCI images through the official `e2b` SDK, unchanged:
// fromImage(an image in a registry on loopback) and fromDebianImage() (Docker Hub's
// debian:stable, which the server pulls through that registry as its mirror: no public
// registry is reachable here, so the test's registry holds a small busybox image under
// that name). Each build runs a command, and a sandbox of it sees the result.
// WARREN_TEST_REGISTRY is the registry's host:port (set by TestE2BSDKTemplates).
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Template } from 'e2b'
import { HOOK_TIMEOUT, RUN_ID, createSandbox, killAll, killQuietly } from './helpers.mjs'

const BUILD_TIMEOUT = 300_000
const REGISTRY = process.env.WARREN_TEST_REGISTRY
const NAME = `sdk-img-${RUN_ID}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 56)

async function deleteTemplate (name) {
  const res = await fetch(`${process.env.E2B_API_URL}/templates/${name}`, {
    method: 'DELETE', headers: { 'X-API-Key': process.env.E2B_API_KEY }
  })
  if (res.status !== 204 && res.status !== 404) console.error(`cleanup: deleting ${name}: ${res.status} ${await res.text()}`)
}

/** Builds t as name and returns what `cmd` prints in a sandbox of it. */
async function buildAndRun (t, name, cmd) {
  await Template.build(t, name)
  const sbx = await createSandbox({ template: name })
  try {
    const r = await sbx.commands.run(cmd)
    return r.stdout
  } finally {
    await killQuietly(sbx)
  }
}

describe('template builds from OCI images', { timeout: 3 * BUILD_TIMEOUT }, () => {
  after(async () => {
    await killAll()
    await deleteTemplate(`${NAME}-a`)
    await deleteTemplate(`${NAME}-b`)
  }, { timeout: HOOK_TIMEOUT })

  it('has the test registry', () => {
    assert.ok(REGISTRY, 'WARREN_TEST_REGISTRY names the registry the test started')
  })

  it('builds fromImage(an image in a registry) and runs its result', { timeout: BUILD_TIMEOUT }, async () => {
    const t = Template().fromImage(`${REGISTRY}/e2b/tiny:v1`)
      .runCmd('mkdir -p /srv && echo from-image > /srv/made', { user: 'root' })
    const out = await buildAndRun(t, `${NAME}-a`, 'cat /srv/made; busybox | head -1 | cut -d" " -f1')
    assert.equal(out, 'from-image\nBusyBox\n')
  })

  it('builds fromDebianImage() through the registry mirror', { timeout: BUILD_TIMEOUT }, async () => {
    const t = Template().fromDebianImage().runCmd('echo from-debian-stable > /tmp/made', { user: 'root' })
    const out = await buildAndRun(t, `${NAME}-b`, 'cat /tmp/made')
    assert.equal(out, 'from-debian-stable\n')
  })
})
