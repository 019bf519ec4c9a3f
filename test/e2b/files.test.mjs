// The filesystem through the official `e2b` SDK: write (text, binary, multi-file,
// octet-stream, gzip), read, list, makeDir, rename, remove, exists, getInfo, watchDir.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { FileNotFoundError, NotFoundError } from 'e2b'
import {
  HOOK_TIMEOUT, TEST_TIMEOUT, createSandbox, eventually, killAll, rejectsWith
} from './helpers.mjs'

const DIR = '/home/user/e2b-suite'

describe('filesystem', { timeout: 300_000 }, () => {
  /** @type {import('e2b').Sandbox} */
  let sbx

  before(async () => {
    sbx = await createSandbox()
  }, { timeout: HOOK_TIMEOUT })
  after(killAll, { timeout: HOOK_TIMEOUT })

  it('write text, read it back (absolute and relative paths)', { timeout: TEST_TIMEOUT }, async () => {
    const text = 'héllo wörld ✓\nsecond line\n'
    const info = await sbx.files.write(`${DIR}/hello.txt`, text)
    assert.equal(info.path, `${DIR}/hello.txt`)
    assert.equal(info.name, 'hello.txt')
    assert.equal(info.type, 'file')
    assert.equal(await sbx.files.read(`${DIR}/hello.txt`), text)

    // Relative paths resolve against the default user's home.
    const rel = await sbx.files.write('relative.txt', 'rel')
    assert.equal(rel.path, '/home/user/relative.txt')
    assert.equal((await sbx.commands.run('cat /home/user/relative.txt; stat -c %U /home/user/relative.txt')).stdout, 'rel' + 'user\n')
  })

  it('write binary (Uint8Array) is byte-identical on read with format bytes', { timeout: TEST_TIMEOUT }, async () => {
    const data = new Uint8Array(256 + 200_000)
    for (let i = 0; i < 256; i++) data[i] = i
    data.set(randomBytes(200_000), 256)
    const path = `${DIR}/blob.bin`
    await sbx.files.write(path, data)
    const back = await sbx.files.read(path, { format: 'bytes' })
    assert.ok(back instanceof Uint8Array, 'format bytes returns a Uint8Array')
    assert.equal(back.length, data.length)
    assert.ok(Buffer.from(back).equals(Buffer.from(data)), 'bytes read back equal the bytes written')
    const sum = (await sbx.commands.run(`sha256sum ${path} | cut -d' ' -f1`)).stdout.trim()
    assert.equal(sum, createHash('sha256').update(data).digest('hex'), 'the sandbox sees the same bytes')
    const blob = await sbx.files.read(path, { format: 'blob' })
    assert.equal(blob.size, data.length)
  })

  it('octet-stream and gzip uploads, gzip download', { timeout: TEST_TIMEOUT }, async () => {
    const data = randomBytes(50_000)
    await sbx.files.write(`${DIR}/octet.bin`, data, { useOctetStream: true })
    assert.ok(Buffer.from(await sbx.files.read(`${DIR}/octet.bin`, { format: 'bytes' })).equals(data), 'octet-stream upload')
    const text = 'compress me '.repeat(1000)
    await sbx.files.write(`${DIR}/gzip.txt`, text, { gzip: true })
    assert.equal(await sbx.files.read(`${DIR}/gzip.txt`), text, 'gzip upload')
    assert.equal(await sbx.files.read(`${DIR}/gzip.txt`, { gzip: true }), text, 'gzip download')
  })

  it('multi-file write([...]) writes every file, in order', { timeout: TEST_TIMEOUT }, async () => {
    const bin = randomBytes(1000)
    const infos = await sbx.files.write([
      { path: `${DIR}/multi/a.txt`, data: 'A' },
      { path: `${DIR}/multi/nested/b.txt`, data: 'B' },
      { path: `${DIR}/multi/c.bin`, data: bin }
    ])
    assert.ok(Array.isArray(infos), 'write([...]) returns an array')
    assert.deepEqual(infos.map((i) => i.path), [`${DIR}/multi/a.txt`, `${DIR}/multi/nested/b.txt`, `${DIR}/multi/c.bin`])
    assert.deepEqual(infos.map((i) => i.name), ['a.txt', 'b.txt', 'c.bin'])
    assert.equal(await sbx.files.read(`${DIR}/multi/a.txt`), 'A')
    assert.equal(await sbx.files.read(`${DIR}/multi/nested/b.txt`), 'B')
    assert.ok(Buffer.from(await sbx.files.read(`${DIR}/multi/c.bin`, { format: 'bytes' })).equals(bin))
  })

  it('list returns the entries of a directory (depth 1 and 2)', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.files.write([
      { path: `${DIR}/list/one.txt`, data: '1' },
      { path: `${DIR}/list/sub/two.txt`, data: '22' }
    ])
    const entries = await sbx.files.list(`${DIR}/list`)
    const byName = Object.fromEntries(entries.map((e) => [e.name, e]))
    assert.deepEqual(Object.keys(byName).sort(), ['one.txt', 'sub'])
    assert.equal(byName['one.txt'].type, 'file')
    assert.equal(byName['one.txt'].path, `${DIR}/list/one.txt`)
    assert.equal(byName['one.txt'].size, 1)
    assert.equal(byName.sub.type, 'dir')
    const deep = await sbx.files.list(`${DIR}/list`, { depth: 2 })
    assert.deepEqual(deep.map((e) => e.path).sort(), [`${DIR}/list/one.txt`, `${DIR}/list/sub`, `${DIR}/list/sub/two.txt`])
    await rejectsWith(sbx.files.list(`${DIR}/no-such-dir`), [NotFoundError], 'list() of a missing directory')
  })

  it('makeDir creates parents and returns false the second time', { timeout: TEST_TIMEOUT }, async () => {
    assert.equal(await sbx.files.makeDir(`${DIR}/made/deep/er`), true, 'first makeDir()')
    assert.equal(await sbx.files.makeDir(`${DIR}/made/deep/er`), false, 'second makeDir()')
    const info = await sbx.files.getInfo(`${DIR}/made/deep/er`)
    assert.equal(info.type, 'dir')
    assert.equal(info.owner, 'user')
  })

  it('rename moves a file', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.files.write(`${DIR}/before.txt`, 'moving')
    const info = await sbx.files.rename(`${DIR}/before.txt`, `${DIR}/after.txt`)
    assert.equal(info.path, `${DIR}/after.txt`)
    assert.equal(info.name, 'after.txt')
    assert.equal(await sbx.files.exists(`${DIR}/before.txt`), false)
    assert.equal(await sbx.files.read(`${DIR}/after.txt`), 'moving')
    await rejectsWith(sbx.files.rename(`${DIR}/never.txt`, `${DIR}/x.txt`), [NotFoundError], 'rename() of a missing file')
  })

  it('remove deletes files and directories', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.files.write(`${DIR}/rm/inner/file.txt`, 'x')
    await sbx.files.write(`${DIR}/rm-me.txt`, 'x')
    await sbx.files.remove(`${DIR}/rm-me.txt`)
    assert.equal(await sbx.files.exists(`${DIR}/rm-me.txt`), false)
    await sbx.files.remove(`${DIR}/rm`)
    assert.equal(await sbx.files.exists(`${DIR}/rm`), false)
  })

  it('getInfo describes a file; exists is true for it and false for a missing path', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.files.write(`${DIR}/info.txt`, '12345')
    const info = await sbx.files.getInfo(`${DIR}/info.txt`)
    assert.equal(info.name, 'info.txt')
    assert.equal(info.path, `${DIR}/info.txt`)
    assert.equal(info.type, 'file')
    assert.equal(info.size, 5)
    assert.equal(info.owner, 'user')
    assert.equal(info.group, 'user')
    assert.match(info.permissions, /^-rw/)
    assert.ok(info.modifiedTime instanceof Date && Math.abs(info.modifiedTime - Date.now()) < 300_000,
      `modifiedTime ${info.modifiedTime}`)
    assert.equal(await sbx.files.exists(`${DIR}/info.txt`), true)
    assert.equal(await sbx.files.exists(`${DIR}/definitely/missing`), false)
    await rejectsWith(sbx.files.getInfo(`${DIR}/definitely/missing`), [NotFoundError], 'getInfo() of a missing path')
  })

  it('read of a missing file raises FileNotFoundError', { timeout: TEST_TIMEOUT }, async () => {
    await rejectsWith(sbx.files.read(`${DIR}/missing.txt`), [FileNotFoundError, NotFoundError], 'read() of a missing file')
  })

  it('files are owned by the selected user (user: root)', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.files.write('/root/owned.txt', 'root', { user: 'root' })
    assert.equal((await sbx.files.getInfo('/root/owned.txt', { user: 'root' })).owner, 'root')
    assert.equal(await sbx.files.read('/root/owned.txt', { user: 'root' }), 'root')
  })

  it('watchDir sees create, write and remove events', { timeout: TEST_TIMEOUT }, async () => {
    const dir = `${DIR}/watched`
    await sbx.files.makeDir(dir)
    const events = []
    let exitErr = null
    const handle = await sbx.files.watchDir(dir, (e) => { events.push(e) }, {
      timeoutMs: 60_000,
      onExit: (err) => { exitErr = err ?? null }
    })
    try {
      await sbx.commands.run(`echo one > ${dir}/w.txt`)
      await sbx.commands.run(`echo two >> ${dir}/w.txt`)
      await sbx.files.remove(`${dir}/w.txt`)
      const seen = (type) => events.some((e) => e.name === 'w.txt' && e.type === type)
      await eventually(() => seen('create') && seen('write') && seen('remove'),
        { timeoutMs: 10_000, what: `create, write and remove events for w.txt; got ${JSON.stringify(events)}` })
    } finally {
      await handle.stop()
    }
    assert.equal(exitErr, null, `watch ended with an error: ${exitErr}`)
    await rejectsWith(sbx.files.watchDir(`${DIR}/not-there`, () => {}), [NotFoundError], 'watchDir() of a missing directory')
  })
})
