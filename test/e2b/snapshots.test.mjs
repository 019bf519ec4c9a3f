// Forks and snapshots through the official `e2b` SDK (gVisor sandboxes): sbx.fork({count})
// with writes each copy keeps to itself, sbx.createSnapshot then Sandbox.create(snapshotId)
// with the state present, listSnapshots and deleteSnapshot.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Sandbox } from 'e2b'
import { HOOK_TIMEOUT, SUITE_METADATA, createSandbox, eventually, killAll, killQuietly, track } from './helpers.mjs'

// A Python process that holds a value and a counter in memory, on port 8081:
// GET / answers "<counter> <value>", GET /set?v=X sets the value.
const MEMORY_SERVER = `import http.server, threading, time, urllib.parse
n = 0
v = "unset"
def tick():
    global n
    while True:
        n += 1
        time.sleep(0.05)
threading.Thread(target=tick, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global v
        u = urllib.parse.urlparse(self.path)
        if u.path == "/set":
            v = urllib.parse.parse_qs(u.query)["v"][0]
        b = ("%d %s" % (n, v)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8081), H).serve_forever()
`

/** Asks the memory server inside sbx (path "/" or "/set?v=X"): {n, v}. */
async function memory (sbx, path = '/') {
  const r = await sbx.commands.run(`curl -sf 'http://127.0.0.1:8081${path}'`)
  const [n, v] = r.stdout.trim().split(' ')
  return { n: Number(n), v }
}

const TIMEOUT = 180_000

describe('fork and snapshots', { timeout: 600_000 }, () => {
  /** @type {Sandbox} */
  let sbx
  let before0 = 0

  before(async () => {
    sbx = await createSandbox({ envs: { FORK_ENV: 'from-parent' } })
    await sbx.files.write('/tmp/memory.py', MEMORY_SERVER)
    await sbx.files.write('/home/user/parent-file', 'parent')
    await sbx.commands.run('python3 /tmp/memory.py', { background: true })
    await eventually(async () => (await memory(sbx)).n > 0, { what: 'the memory server' })
    assert.equal((await memory(sbx, '/set?v=parent-value')).v, 'parent-value')
    before0 = (await memory(sbx)).n
  }, { timeout: HOOK_TIMEOUT })
  after(killAll, { timeout: HOOK_TIMEOUT })

  it('fork of 3: each copy has the parent state and keeps its writes to itself', { timeout: TIMEOUT }, async () => {
    const forks = await sbx.fork({ count: 3, timeoutMs: 120_000 })
    assert.equal(forks.length, 3)
    for (const f of forks) {
      assert.ok(f instanceof Sandbox, `a fork failed: ${f}`)
      track(f)
    }
    const ids = new Set([sbx.sandboxId, ...forks.map((f) => f.sandboxId)])
    assert.equal(ids.size, 4, 'every fork has its own id')
    for (const [i, f] of forks.entries()) {
      const r = await f.commands.run('hostname; cat /home/user/parent-file; echo; echo $FORK_ENV')
      assert.equal(r.stdout, `${f.sandboxId}\nparent\nfrom-parent\n`, `fork ${i}: hostname, file, env`)
      const m = await memory(f)
      assert.equal(m.v, 'parent-value', `fork ${i}: the parent's value in memory`)
      assert.ok(m.n >= before0, `fork ${i}: counter ${m.n}, the parent had ${before0} before the fork`)
      await f.files.write('/home/user/mine', `child-${i}`)
      assert.equal((await memory(f, `/set?v=child-${i}`)).v, `child-${i}`)
    }
    for (const [i, f] of forks.entries()) {
      assert.equal(await f.files.read('/home/user/mine'), `child-${i}`, `fork ${i} sees only its own file`)
      assert.equal((await memory(f)).v, `child-${i}`, `fork ${i} holds only its own value`)
    }
    assert.equal(await sbx.files.exists('/home/user/mine'), false, 'the parent does not see the forks\' files')
    assert.equal((await memory(sbx)).v, 'parent-value', 'the parent keeps its value')
    assert.equal(await sbx.isRunning(), true, 'the parent keeps running')
    await Promise.all(forks.map(killQuietly))
  })

  it('createSnapshot, then Sandbox.create(snapshotId) has its state; list and delete', { timeout: TIMEOUT }, async () => {
    assert.equal((await memory(sbx, '/set?v=at-snapshot')).v, 'at-snapshot')
    await sbx.files.write('/home/user/saved', 'saved')
    const name = `e2b-snap-${Date.now().toString(36)}`
    const snap = await sbx.createSnapshot({ name })
    assert.ok(snap.snapshotId, 'a snapshot id')
    assert.deepEqual(snap.names, [name])
    await sbx.files.write('/home/user/later', 'later')

    const listed = await sbx.listSnapshots().nextItems()
    assert.ok(listed.some((s) => s.snapshotId === snap.snapshotId), `listSnapshots of the sandbox: ${JSON.stringify(listed)}`)
    const all = await Sandbox.listSnapshots().nextItems()
    assert.ok(all.some((s) => s.snapshotId === snap.snapshotId), 'Sandbox.listSnapshots lists it')

    const restored = track(await Sandbox.create(snap.snapshotId, { timeoutMs: 120_000, metadata: SUITE_METADATA }))
    assert.notEqual(restored.sandboxId, sbx.sandboxId)
    assert.equal(await restored.files.read('/home/user/saved'), 'saved')
    assert.equal(await restored.files.exists('/home/user/later'), false, 'writes after the snapshot are not in it')
    assert.equal((await memory(restored)).v, 'at-snapshot', 'the value in memory at the snapshot')
    const byName = track(await Sandbox.create(name, { timeoutMs: 120_000, metadata: SUITE_METADATA }))
    assert.equal((await memory(byName)).v, 'at-snapshot', 'created by the snapshot\'s name')
    await killQuietly(byName)

    assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), true)
    assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), false, 'a second delete finds nothing')
    const afterDelete = await Sandbox.listSnapshots({ sandboxId: sbx.sandboxId }).nextItems()
    assert.ok(!afterDelete.some((s) => s.snapshotId === snap.snapshotId), 'deleted snapshots are not listed')
    // The sandbox started from it works on.
    const r = await restored.commands.run('cat /home/user/saved')
    assert.equal(r.stdout, 'saved')
    const n1 = (await memory(restored)).n
    await eventually(async () => (await memory(restored)).n > n1, { what: 'the restored counter to go on' })
    await killQuietly(restored)
  })
})
