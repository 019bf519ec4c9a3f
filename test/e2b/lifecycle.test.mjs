// Sandbox lifecycle through the official `e2b` SDK: create, getInfo, connect, isRunning,
// setTimeout, getMetrics, getHost, kill, expiry, and the not-found paths.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { AuthenticationError, CommandExitError, Sandbox, SandboxNotFoundError, TimeoutError } from 'e2b'
import {
  HOOK_TIMEOUT, SUITE_METADATA, TEST_TIMEOUT, createSandbox, describeError, eventually,
  getViaHost, killAll, killQuietly, rejectsWith, unknownSandboxId
} from './helpers.mjs'

const SEMVER = /^v?\d+\.\d+\.\d+/

describe('sandbox lifecycle', { timeout: 300_000 }, () => {
  /** @type {Sandbox} */
  let sbx
  const metadata = { purpose: 'lifecycle', note: 'hello world' }

  before(async () => {
    sbx = await createSandbox({ metadata, timeoutMs: 120_000 })
  }, { timeout: HOOK_TIMEOUT })
  after(killAll, { timeout: HOOK_TIMEOUT })

  it('Sandbox.create returns a running sandbox with a DNS-safe id', { timeout: TEST_TIMEOUT }, async () => {
    assert.match(sbx.sandboxId, /^[a-z0-9]+$/, 'sandbox ids must survive the <port>-<id>.<domain> scheme')
    assert.equal(await sbx.isRunning({ requestTimeoutMs: 10_000 }), true, 'isRunning() on a live sandbox')
    const r = await sbx.commands.run('echo ok')
    assert.equal(r.stdout, 'ok\n')
  })

  it('getInfo (instance and static) describes the sandbox', { timeout: TEST_TIMEOUT }, async () => {
    const info = await sbx.getInfo()
    const same = await Sandbox.getInfo(sbx.sandboxId)
    assert.equal(info.sandboxId, sbx.sandboxId)
    assert.equal(same.sandboxId, sbx.sandboxId)
    assert.ok(info.templateId, `templateId should be set, got ${info.templateId}`)
    assert.deepEqual(info.metadata, { ...SUITE_METADATA, ...metadata })
    assert.equal(info.state, 'running')
    assert.match(info.envdVersion, SEMVER)
    assert.ok(info.cpuCount > 0, `cpuCount ${info.cpuCount}`)
    assert.ok(info.memoryMB > 0, `memoryMB ${info.memoryMB}`)
    assert.ok(!Number.isNaN(info.startedAt.getTime()), 'startedAt is a date')
    assert.ok(!Number.isNaN(info.endAt.getTime()), 'endAt is a date')
    assert.ok(info.startedAt <= new Date(), 'startedAt is in the past')
    // Created with timeoutMs 120 000: the end is about two minutes after the start.
    const lifetime = (info.endAt - info.startedAt) / 1000
    assert.ok(lifetime > 100 && lifetime < 140, `endAt - startedAt = ${lifetime}s, want ~120s`)
  })

  it('setTimeout extends the sandbox lifetime', { timeout: TEST_TIMEOUT }, async () => {
    const before = (await sbx.getInfo()).endAt
    await sbx.setTimeout(200_000)
    const afterSet = (await sbx.getInfo()).endAt
    const remaining = (afterSet - Date.now()) / 1000
    assert.ok(afterSet > before, `endAt ${afterSet.toISOString()} should be later than ${before.toISOString()}`)
    assert.ok(remaining > 180 && remaining <= 205, `remaining lifetime ${remaining}s, want ~200s`)
    await Sandbox.setTimeout(sbx.sandboxId, 210_000)
    const viaStatic = (await sbx.getInfo()).endAt
    assert.ok(viaStatic > afterSet, 'static Sandbox.setTimeout also moves endAt')
  })

  it('getMetrics returns samples with memTotal > 0', { timeout: TEST_TIMEOUT }, async () => {
    const metrics = await eventually(async () => {
      const m = await sbx.getMetrics()
      assert.ok(Array.isArray(m), `getMetrics() returned ${typeof m}`)
      return m.length > 0 && m
    }, { timeoutMs: 30_000, intervalMs: 1_000, what: 'a non-empty getMetrics() answer' })
    const last = metrics[metrics.length - 1]
    for (const k of ['cpuUsedPct', 'cpuCount', 'memUsed', 'memTotal', 'diskUsed', 'diskTotal']) {
      assert.equal(typeof last[k], 'number', `metric ${k} is ${inspectType(last[k])}`)
    }
    assert.ok(last.memTotal > 0, `memTotal ${last.memTotal}`)
    assert.ok(last.memUsed > 0, `memUsed ${last.memUsed}`)
    assert.ok(last.cpuCount > 0, `cpuCount ${last.cpuCount}`)
    assert.ok(!Number.isNaN(last.timestamp.getTime()), `timestamp ${last.timestamp}`)
    const viaStatic = await Sandbox.getMetrics(sbx.sandboxId)
    assert.ok(Array.isArray(viaStatic))
  })

  it('getHost(port) returns <port>-<id>.<domain>', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(sbx.sandboxDomain, 'sandboxDomain is set')
    assert.equal(sbx.getHost(8000), `8000-${sbx.sandboxId}.${sbx.sandboxDomain}`)
    if (!process.env.E2B_DOMAIN) {
      // Without E2B_DOMAIN the SDK falls back to e2b.app unless the server returned its domain.
      assert.notEqual(sbx.sandboxDomain, 'e2b.app', 'create should return the server\'s sandbox `domain`')
    } else {
      assert.equal(sbx.sandboxDomain, process.env.E2B_DOMAIN)
    }
  })

  it('a sandbox port is reachable at getHost(port)', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.files.write('/tmp/www/hello.txt', 'hello through the proxy\n')
    const server = await sbx.commands.run('cd /tmp/www && exec python3 -m http.server 8000 --bind 0.0.0.0', {
      background: true, timeoutMs: 60_000
    })
    try {
      const host = sbx.getHost(8000)
      const res = await eventually(async () => {
        const r = await getViaHost(host, '/hello.txt')
        return r.status === 200 && r
      }, { timeoutMs: 20_000, intervalMs: 500, what: `GET /hello.txt on ${host} to answer 200` })
      assert.equal(res.body, 'hello through the proxy\n')
    } finally {
      await server.kill().catch(() => {})
    }
  })

  it('Sandbox.connect(id) returns a working handle', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.files.write('/tmp/connect-marker', 'written before connect')
    const again = await Sandbox.connect(sbx.sandboxId)
    assert.equal(again.sandboxId, sbx.sandboxId)
    assert.equal(await again.isRunning(), true)
    assert.equal(await again.files.read('/tmp/connect-marker'), 'written before connect')
    const r = await again.commands.run('echo via-connect')
    assert.equal(r.stdout, 'via-connect\n')
    const viaInstance = await sbx.connect()
    assert.equal((await viaInstance.commands.run('echo instance-connect')).stdout, 'instance-connect\n')
  })

  it('unknown sandbox ids raise SandboxNotFoundError; kill returns false', { timeout: TEST_TIMEOUT }, async () => {
    const id = unknownSandboxId()
    await rejectsWith(Sandbox.getInfo(id), [SandboxNotFoundError], `Sandbox.getInfo(${id})`)
    await rejectsWith(Sandbox.connect(id), [SandboxNotFoundError], `Sandbox.connect(${id})`)
    await rejectsWith(Sandbox.setTimeout(id, 30_000), [SandboxNotFoundError], `Sandbox.setTimeout(${id})`)
    assert.equal(await Sandbox.kill(id), false, `Sandbox.kill(${id}) of an unknown id`)
  })

  it('a wrong API key raises AuthenticationError', { timeout: TEST_TIMEOUT }, async () => {
    const apiKey = 'sk_this_key_does_not_exist_0000000000000'
    await rejectsWith(Sandbox.list({ apiKey }).nextItems(), [AuthenticationError], 'Sandbox.list() with a wrong key')
    await rejectsWith(Sandbox.getInfo(sbx.sandboxId, { apiKey }), [AuthenticationError], 'Sandbox.getInfo() with a wrong key')
    await rejectsWith(Sandbox.create({ apiKey, timeoutMs: 10_000 }), [AuthenticationError], 'Sandbox.create() with a wrong key')
  })

  it('kill returns true, then false; the killed sandbox is gone', { timeout: TEST_TIMEOUT }, async () => {
    const victim = await createSandbox({ timeoutMs: 60_000 })
    try {
      assert.equal(await victim.isRunning(), true)
      assert.equal(await victim.kill(), true, 'first kill()')
      assert.equal(await victim.kill(), false, 'second kill()')
      assert.equal(await Sandbox.kill(victim.sandboxId), false, 'static Sandbox.kill() after kill()')
      assert.equal(await victim.isRunning({ requestTimeoutMs: 10_000 }), false, 'isRunning() after kill()')
      await rejectsWith(Sandbox.getInfo(victim.sandboxId), [SandboxNotFoundError], 'getInfo() of a killed sandbox')
      await rejectsWith(victim.commands.run('echo hi', { requestTimeoutMs: 10_000 }),
        [TimeoutError, SandboxNotFoundError], 'commands.run() in a killed sandbox')
    } finally {
      await killQuietly(victim)
    }
  })

  it('a sandbox created right after another was killed answers at once', { timeout: TEST_TIMEOUT }, async () => {
    // Create/kill loops are how agents use sandboxes. A new sandbox may inherit the network
    // address of the one just killed; the first POST to it must not meet a stale connection.
    for (let round = 0; round < 3; round++) {
      const a = await createSandbox({ timeoutMs: 60_000 })
      try {
        await a.commands.run('true')
        await a.files.write('/tmp/a.txt', 'a')
      } finally {
        await killQuietly(a)
      }
      const b = await createSandbox({ timeoutMs: 60_000 })
      try {
        const r = await b.commands.run('echo fresh')
        assert.equal(r.stdout, 'fresh\n', `round ${round}`)
        await b.files.write('/tmp/b.txt', 'b')
      } catch (err) {
        assert.fail(`round ${round}: the first calls to a fresh sandbox failed: ${describeError(err)}`)
      } finally {
        await killQuietly(b)
      }
    }
  })

  it('a sandbox created with timeoutMs 3000 expires', { timeout: TEST_TIMEOUT }, async () => {
    const short = await createSandbox({ timeoutMs: 3_000 })
    try {
      const t0 = Date.now()
      await eventually(async () => (await short.isRunning({ requestTimeoutMs: 5_000 })) === false, {
        timeoutMs: 30_000, intervalMs: 500, what: 'isRunning() to turn false after the 3 s timeout'
      })
      const waited = (Date.now() - t0) / 1000
      assert.ok(waited < 25, `sandbox stopped ${waited}s after create, want shortly after 3 s`)
      const cmdErr = await rejectsWith(short.commands.run('echo too late', { requestTimeoutMs: 10_000 }),
        [TimeoutError, SandboxNotFoundError], 'commands.run() after expiry')
      assert.ok(!(cmdErr instanceof CommandExitError), describeError(cmdErr))
      await rejectsWith(short.files.list('/', { requestTimeoutMs: 10_000 }),
        [TimeoutError, SandboxNotFoundError], 'files.list() after expiry')
      await rejectsWith(short.files.read('/etc/hostname', { requestTimeoutMs: 10_000 }),
        [TimeoutError, SandboxNotFoundError], 'files.read() after expiry')
      assert.equal(await short.kill(), false, 'kill() of an expired sandbox')
    } finally {
      await killQuietly(short)
    }
  })
})

function inspectType (v) {
  return v === null ? 'null' : typeof v
}
