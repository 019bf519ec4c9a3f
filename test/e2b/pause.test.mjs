// Pause and resume through the official `e2b` SDK: pause, list and getInfo showing the
// sandbox paused, connect resuming it with the same background process still serving
// from memory at the same URL and the files kept; and a sandbox created with
// lifecycle { onTimeout: 'pause', autoResume: true } paused by its timeout and resumed
// by a request through the sandbox proxy.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Sandbox } from 'e2b'
import {
  HOOK_TIMEOUT, RUN_ID, TEST_TIMEOUT, createSandbox, eventually, getViaHost, killAll
} from './helpers.mjs'

// A server on port 8000 answering with a counter a thread increments in memory: after a
// resume, a count that goes on (and the same pid) proves the process and its memory came
// back rather than a new one starting.
const COUNTER = `import http.server, os, threading, time
n = 0
def tick():
    global n
    while True:
        n += 1
        time.sleep(0.05)
threading.Thread(target=tick, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = f"{os.getpid()} {n}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
`

/**
 * Starts the counter in sbx and returns its host; resolves once it answers. With
 * background it is the SDK's background command (whose event stream stays open);
 * otherwise a detached process, so that no SDK stream probes the sandbox when it pauses.
 */
async function startCounter (sbx, background = true) {
  await sbx.files.write('/tmp/counter.py', COUNTER)
  if (background) {
    await sbx.commands.run('python3 /tmp/counter.py', { background: true, timeoutMs: 0 })
  } else {
    await sbx.commands.run('setsid python3 /tmp/counter.py </dev/null >/dev/null 2>&1 &')
  }
  const host = sbx.getHost(8000)
  await readCounter(host, 20_000)
  return host
}

/** Reads {pid, n} from the counter at host, waiting up to timeoutMs for an answer. */
async function readCounter (host, timeoutMs = 20_000) {
  const res = await eventually(async () => {
    const r = await getViaHost(host, '/', 10_000)
    return r.status === 200 && r
  }, { timeoutMs, intervalMs: 300, what: `the counter on ${host} to answer` })
  const [pid, n] = res.body.split(' ').map(Number)
  return { pid, n }
}

describe('pause and resume', { timeout: 300_000 }, () => {
  after(killAll, { timeout: HOOK_TIMEOUT })

  it('pause, list shows paused, connect resumes the same process with its files', { timeout: 120_000 }, async () => {
    const purpose = 'pause-connect'
    const sbx = await createSandbox({ metadata: { purpose } })
    await sbx.files.write('/home/user/kept.txt', 'kept across the pause')
    const host = await startCounter(sbx)
    const before = await readCounter(host)

    assert.equal(await sbx.pause(), true, 'pause() of a running sandbox')
    assert.equal(await Sandbox.pause(sbx.sandboxId), false, 'pause() of a paused sandbox (409)')
    const info = await Sandbox.getInfo(sbx.sandboxId)
    assert.equal(info.state, 'paused', 'getInfo().state of a paused sandbox')
    const paused = await Sandbox.list({ query: { metadata: { 'warren-run': RUN_ID, purpose }, state: ['paused'] } }).nextItems()
    assert.deepEqual(paused.map((s) => [s.sandboxId, s.state]), [[sbx.sandboxId, 'paused']], 'list(state: paused)')
    const running = await Sandbox.list({ query: { metadata: { 'warren-run': RUN_ID, purpose }, state: ['running'] } }).nextItems()
    assert.deepEqual(running, [], 'list(state: running) while paused')

    const resumed = await Sandbox.connect(sbx.sandboxId)
    assert.equal(resumed.sandboxId, sbx.sandboxId)
    assert.equal(await resumed.isRunning(), true)
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, 'running')
    const afterResume = await readCounter(host)
    assert.equal(afterResume.pid, before.pid, 'the same process serves after the resume')
    assert.ok(afterResume.n >= before.n, `counter ${afterResume.n} after the resume, ${before.n} before: it went on from memory`)
    assert.equal(await resumed.files.read('/home/user/kept.txt'), 'kept across the pause')
    const r = await resumed.commands.run('pgrep -f counter.py')
    assert.equal(r.stdout.trim(), String(before.pid))
  })

  it('autoPause at the timeout, then traffic through the proxy resumes it', { timeout: 150_000 }, async () => {
    const sbx = await createSandbox({ timeoutMs: 20_000, lifecycle: { onTimeout: 'pause', autoResume: true }, metadata: { purpose: 'auto-resume' } })
    const info = await sbx.getInfo()
    assert.deepEqual(info.lifecycle, { onTimeout: 'pause', autoResume: true })
    // Detached: the SDK's stream of a background command, cut by the pause, would make
    // the SDK probe the sandbox's health through the proxy, which is traffic that
    // resumes it at once.
    const host = await startCounter(sbx, false)
    const before = await readCounter(host)
    await eventually(async () => (await Sandbox.getInfo(sbx.sandboxId)).state === 'paused',
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'the timeout to pause the sandbox' })
    // A request through the proxy resumes it and is then served.
    const res = await getViaHost(host, '/', 30_000)
    assert.equal(res.status, 200, `GET through the proxy of a paused auto-resume sandbox: ${res.status} ${res.body}`)
    const [pid, n] = res.body.split(' ').map(Number)
    assert.equal(pid, before.pid, 'the same process serves after the auto-resume')
    assert.ok(n >= before.n, `counter ${n} after the auto-resume, ${before.n} before`)
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, 'running')
  })

  it('a paused sandbox is killed like a running one', { timeout: TEST_TIMEOUT }, async () => {
    const sbx = await createSandbox({ metadata: { purpose: 'pause-kill' } })
    assert.equal(await sbx.pause(), true)
    assert.equal(await Sandbox.kill(sbx.sandboxId), true, 'kill() of a paused sandbox')
    assert.equal(await Sandbox.kill(sbx.sandboxId), false, 'second kill()')
  })
})
