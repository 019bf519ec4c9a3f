// Shared helpers for the E2B SDK suite. Not a test file (node --test only runs *.test.mjs).
//
// The SDK reads its configuration from the environment by itself: E2B_API_URL (control
// plane), E2B_SANDBOX_URL (sandbox proxy, header-routed), E2B_API_KEY, E2B_DOMAIN.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { inspect } from 'node:util'
import { Sandbox } from 'e2b'

for (const name of ['E2B_API_URL', 'E2B_API_KEY']) {
  if (!process.env[name]) {
    throw new Error(`${name} is not set: point the suite at a running server, e.g. ` +
      'E2B_API_URL=http://127.0.0.1:3000 E2B_SANDBOX_URL=http://127.0.0.1:3001 E2B_API_KEY=sk_... npm test')
  }
}
if (process.env.E2B_DEBUG) {
  throw new Error('E2B_DEBUG is set: the SDK would skip the control plane; unset it to test a server')
}

/** Per-test timeout for ordinary tests (ms). */
export const TEST_TIMEOUT = 90_000
/** Timeout for hooks that create sandboxes (ms). */
export const HOOK_TIMEOUT = 120_000
/** Lifetime of the sandboxes a test file shares (ms); they are killed in `after` anyway. */
export const SANDBOX_TIMEOUT = 240_000

/** A random string unique to this run, for metadata filters. */
export const RUN_ID = `run${Date.now().toString(36)}${randomBytes(4).toString('hex')}`

/** Metadata put on every sandbox this suite creates, so a leftover can be traced. */
export const SUITE_METADATA = { 'warren-suite': 'e2b-sdk', 'warren-run': RUN_ID }

/** A well-formed sandbox id (20 × [a-z0-9]) that no server has issued. */
export function unknownSandboxId () {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  return Array.from(randomBytes(20), (b) => alphabet[b % alphabet.length]).join('')
}

/** One line describing an error as the SDK raised it: class, status code, message, cause. */
export function describeError (err) {
  if (!(err instanceof Error)) return `non-Error thrown: ${inspect(err)}`
  let s = `${err.constructor?.name ?? 'Error'}`
  if (err.statusCode !== undefined) s += ` (statusCode ${err.statusCode})`
  if (err.code !== undefined) s += ` (code ${inspect(err.code)})`
  s += `: ${err.message}`
  if (err.cause) s += ` [cause: ${describeError(err.cause)}]`
  return s
}

/**
 * Awaits promise and asserts that it rejects with an instance of one of classes.
 * Returns the error. The failure message names what came back, so a wrong error class is
 * diagnosable from the test log alone.
 */
export async function rejectsWith (promise, classes, what) {
  const names = classes.map((c) => c.name).join(' or ')
  let value
  try {
    value = await promise
  } catch (err) {
    if (!classes.some((c) => err instanceof c)) {
      assert.fail(`${what}: expected ${names}, got ${describeError(err)}`)
    }
    return err
  }
  assert.fail(`${what}: expected ${names}, but it succeeded with ${inspect(value, { depth: 3 })}`)
}

/** Polls fn until it returns a truthy value (returned) or timeoutMs passes (assertion failure). */
export async function eventually (fn, { timeoutMs = 15_000, intervalMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
      last = undefined
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}` + (last ? `; last error: ${describeError(last)}` : ''))
    }
    await sleep(intervalMs)
  }
}

export function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Sandboxes created through createSandbox, killed by killAll. */
const created = new Set()

/** Sandbox.create with the suite's metadata merged in; remembered for killAll. */
export async function createSandbox (opts = {}) {
  const sbx = await Sandbox.create({
    timeoutMs: SANDBOX_TIMEOUT,
    ...opts,
    metadata: { ...SUITE_METADATA, ...(opts.metadata ?? {}) }
  })
  created.add(sbx)
  return sbx
}

/** Remembers a sandbox made another way (a fork, a create from a snapshot) for killAll. */
export function track (sbx) {
  created.add(sbx)
  return sbx
}

/** Kills a sandbox, ignoring "already gone" and reporting other failures on stderr. */
export async function killQuietly (sbx) {
  if (!sbx) return
  created.delete(sbx)
  try {
    await sbx.kill({ requestTimeoutMs: 30_000 })
  } catch (err) {
    console.error(`cleanup: killing ${sbx.sandboxId}: ${describeError(err)}`)
  }
}

/** Kills every sandbox created with createSandbox and not killed yet (for `after` hooks). */
export async function killAll () {
  await Promise.all([...created].map(killQuietly))
}

const encoder = new TextEncoder()
export function bytes (s) {
  return encoder.encode(s)
}

/**
 * GETs path from the sandbox port behind host (as returned by sbx.getHost). With
 * E2B_SANDBOX_URL set the request goes to that proxy with `Host: <host>` (the proxy routes on
 * the Host header; *.localhost names need not resolve); otherwise straight to http://<host>.
 */
export function getViaHost (host, path, timeoutMs = 5_000) {
  const base = process.env.E2B_SANDBOX_URL ? new URL(process.env.E2B_SANDBOX_URL) : new URL(`http://${host}`)
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: base.hostname,
      port: base.port || 80,
      path,
      method: 'GET',
      headers: { Host: host },
      timeout: timeoutMs
    }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path} with Host ${host}: no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}
