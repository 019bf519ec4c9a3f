// Egress policy through the official `e2b` SDK: create with `network: {denyOut, allowOut}`
// and `sbx.updateNetwork(...)`, checked by connecting from inside the sandbox to fake
// hosts the Go test made in a network namespace of its own (WARREN_TEST_FAKE_HOSTS: two
// IPv4 addresses answering HTTP on port 8080 with "host-<address>").
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ALL_TRAFFIC, Sandbox, SandboxError, SandboxNotFoundError } from 'e2b'
import {
  HOOK_TIMEOUT, TEST_TIMEOUT, createSandbox, killAll, rejectsWith, unknownSandboxId
} from './helpers.mjs'

const hosts = (process.env.WARREN_TEST_FAKE_HOSTS ?? '').split(',').filter(Boolean)
const skip = hosts.length < 2 &&
  'WARREN_TEST_FAKE_HOSTS is not set (the Go test TestE2BSDKEgress sets it to two fake hosts it made)'

/** What a curl from inside sbx to host gets: "host-<addr>" when it connects, else "DENIED". */
async function fetchFrom (sbx, host) {
  const r = await sbx.commands.run(`curl -sS -m 3 http://${host}:8080/ || echo DENIED`, { timeoutMs: 20_000 })
  return r.stdout.trim().split('\n').pop()
}

describe('egress policy (network options)', { timeout: 300_000, skip }, () => {
  /** @type {Sandbox} */
  let sbx
  const [a, b] = hosts

  before(async () => {
    sbx = await createSandbox({ network: { denyOut: [ALL_TRAFFIC], allowOut: [a] } })
  }, { timeout: HOOK_TIMEOUT })
  after(killAll, { timeout: HOOK_TIMEOUT })

  it('create with denyOut ALL_TRAFFIC and an allowOut list lets only those through', { timeout: TEST_TIMEOUT }, async () => {
    assert.equal(await fetchFrom(sbx, a), `host-${a}`, `${a} is in allowOut`)
    assert.equal(await fetchFrom(sbx, b), 'DENIED', `${b} is denied by ALL_TRAFFIC`)
  })

  it('updateNetwork replaces the policy for new connections, without a restart', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.updateNetwork({ denyOut: [ALL_TRAFFIC], allowOut: [`${b}/32`] })
    assert.equal(await fetchFrom(sbx, b), `host-${b}`, `${b} allowed after the update`)
    assert.equal(await fetchFrom(sbx, a), 'DENIED', `${a} no longer allowed`)
    // The static form, and an update that clears everything: all traffic allowed again.
    await Sandbox.updateNetwork(sbx.sandboxId, {})
    assert.equal(await fetchFrom(sbx, a), `host-${a}`)
    assert.equal(await fetchFrom(sbx, b), `host-${b}`)
    // allowInternetAccess: false is denyOut ALL_TRAFFIC; allowOut still passes.
    await sbx.updateNetwork({ allowInternetAccess: false, allowOut: [a] })
    assert.equal(await fetchFrom(sbx, a), `host-${a}`)
    assert.equal(await fetchFrom(sbx, b), 'DENIED')
  })

  it('bad entries and unsupported options are refused by name', { timeout: TEST_TIMEOUT }, async () => {
    const err = await rejectsWith(sbx.updateNetwork({ allowOut: ['2001:db8::1'] }), [SandboxError], 'an IPv6 entry')
    assert.equal(err.statusCode, 400)
    assert.match(err.message, /allowOut\[0\].*IPv6/)
    const proxy = await rejectsWith(sbx.updateNetwork({ egressProxy: { address: 'proxy.example.com:1080' } }), [SandboxError], 'an egress proxy')
    assert.match(proxy.message, /egressProxy/)
    await rejectsWith(Sandbox.create({ network: { egressProxy: { address: 'proxy.example.com:1080' } } }), [SandboxError], 'create with an egress proxy')
    // The policy in force did not change.
    assert.equal(await fetchFrom(sbx, b), 'DENIED')
  })

  it('updateNetwork of an unknown sandbox is SandboxNotFoundError', { timeout: TEST_TIMEOUT }, async () => {
    await rejectsWith(Sandbox.updateNetwork(unknownSandboxId(), { allowOut: [a] }), [SandboxNotFoundError], 'unknown sandbox')
  })
})
