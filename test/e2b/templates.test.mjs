// Template builds through the official `e2b` SDK's Template class, unchanged:
// Template().fromTemplate('base').runCmd(...).copy(a local file).runCmd(...)
// .setStartCmd(a server, waitForPort(...)), Template.build with build logs,
// Sandbox.create(the name), the server reached through the proxy; then a rebuild whose
// last step changed takes the earlier steps from the cache and reruns only that one;
// aptInstall from Debian's mirror and pipInstall of a wheel the test makes (no package
// index is reachable here), both checked in a sandbox of the result; and gitClone of a
// repository the build copies in.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import { after, before, describe, it } from 'node:test'
import { Template, waitForPort, waitForURL } from 'e2b'
import { HOOK_TIMEOUT, RUN_ID, createSandbox, eventually, getViaHost, killAll, killQuietly } from './helpers.mjs'

const BUILD_TIMEOUT = 600_000
const PORT = 8000

/** The template this file builds; deleted in `after`. */
const NAME = `sdk-tpl-${RUN_ID}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 60)

/**
 * The build: the served directory holds a file copied from the build's context, a
 * health file (the ready check of a template's port asks GET /health) and a version
 * file written by the last step, which the rebuild changes.
 */
function template (dir, version) {
  return Template({ fileContextPath: dir })
    .fromTemplate('base')
    .runCmd('mkdir -p /srv/site && echo ok > /srv/site/health')
    .copy('hello.txt', '/srv/site/')
    .runCmd(`echo ${version} > /srv/site/version.txt`)
    .setStartCmd(`cd /srv/site && exec python3 -m http.server ${PORT}`, waitForPort(PORT))
}

/** Builds t as name, returning the SDK's answer and the log messages it streamed. */
async function build (t, name = NAME) {
  const logs = []
  const info = await Template.build(t, name, {
    onBuildLogs: (entry) => logs.push(String(entry.message ?? entry))
  })
  return { info, logs }
}

/** The step numbers (1-based) the build's logs say were taken from the cache. */
function cachedSteps (logs) {
  const out = []
  for (const l of logs) {
    const m = /step (\d+)\/\d+: .*: cached/.exec(l)
    if (m) out.push(Number(m[1]))
  }
  return out.sort((a, b) => a - b)
}

/** Starts a sandbox of the template and returns what its server answers for path. */
async function served (file) {
  const sbx = await createSandbox({ template: NAME })
  const host = sbx.getHost(PORT)
  const res = await eventually(async () => {
    const r = await getViaHost(host, `/${file}`)
    return r.status === 200 ? r : undefined
  }, { timeoutMs: 30_000, what: `GET /${file} through the proxy` })
  await killQuietly(sbx)
  return res.body
}

/**
 * A zip archive of files ({name: content}), stored uncompressed: what a wheel is.
 * (APPNOTE.TXT: a local header before each file, then the central directory.)
 */
function zip (files) {
  const locals = []
  const central = []
  let offset = 0
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content)
    const fname = Buffer.from(name)
    const crc = crc32(data)
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0) // local file header
    local.writeUInt16LE(20, 4) // version needed
    local.writeUInt32LE(crc, 14)
    local.writeUInt32LE(data.length, 18)
    local.writeUInt32LE(data.length, 22)
    local.writeUInt16LE(fname.length, 26)
    locals.push(local, fname, data)
    const dir = Buffer.alloc(46)
    dir.writeUInt32LE(0x02014b50, 0) // central directory header
    dir.writeUInt16LE(20, 4) // version made by
    dir.writeUInt16LE(20, 6) // version needed
    dir.writeUInt32LE(crc, 16)
    dir.writeUInt32LE(data.length, 20)
    dir.writeUInt32LE(data.length, 24)
    dir.writeUInt16LE(fname.length, 28)
    dir.writeUInt32LE(offset, 42)
    central.push(dir, fname)
    offset += local.length + fname.length + data.length
  }
  const cd = Buffer.concat(central)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0) // end of central directory
  end.writeUInt16LE(Object.keys(files).length, 8)
  end.writeUInt16LE(Object.keys(files).length, 10)
  end.writeUInt32LE(cd.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, cd, end])
}

/**
 * Writes a pure-Python wheel of package pkg (one module whose VALUE is value, no
 * dependencies) into dir and returns its file name. pip installs such a file without an
 * index; its RECORD lists every file's sha256 as pip checks it.
 */
function writeWheel (dir, pkg, value) {
  const dist = `${pkg}-0.1.dist-info`
  const files = {
    [`${pkg}/__init__.py`]: `VALUE = ${JSON.stringify(value)}\n`,
    [`${dist}/METADATA`]: `Metadata-Version: 2.1\nName: ${pkg.replace(/_/g, '-')}\nVersion: 0.1\n`,
    [`${dist}/WHEEL`]: 'Wheel-Version: 1.0\nGenerator: warren-e2b-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
  }
  const record = Object.entries(files).map(([name, content]) =>
    `${name},sha256=${createHash('sha256').update(content).digest('base64url')},${Buffer.byteLength(content)}`)
  files[`${dist}/RECORD`] = [...record, `${dist}/RECORD,,`].join('\n') + '\n'
  const file = `${pkg}-0.1-py3-none-any.whl`
  writeFileSync(path.join(dir, file), zip(files))
  return file
}

/** Deletes a template this file built (the SDK has no call for it; E2B's CLI uses this route). */
async function deleteTemplate (name) {
  const res = await fetch(`${process.env.E2B_API_URL}/templates/${name}`, {
    method: 'DELETE', headers: { 'X-API-Key': process.env.E2B_API_KEY }
  })
  if (res.status !== 204 && res.status !== 404) {
    console.error(`cleanup: deleting template ${name}: ${res.status} ${await res.text()}`)
  }
}

describe('template builds', { timeout: 2 * BUILD_TIMEOUT }, () => {
  let dir

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warren-e2b-tpl-'))
    writeFileSync(path.join(dir, 'hello.txt'), `hello from ${RUN_ID}\n`)
  })

  after(async () => {
    await killAll()
    rmSync(dir, { recursive: true, force: true })
    await deleteTemplate(NAME)
  }, { timeout: HOOK_TIMEOUT })

  it('builds from base, creates a sandbox from it and reaches its server', { timeout: BUILD_TIMEOUT }, async () => {
    const { info, logs } = await build(template(dir, 'v1'))
    assert.equal(info.templateId, NAME)
    assert.ok(info.buildId, 'the build has an id')
    assert.ok(logs.length > 0, 'onBuildLogs got the build log')
    assert.equal(await Template.exists(NAME), true, 'Template.exists finds the built template')
    assert.equal(await Template.exists(`${NAME}-nope`), false, 'Template.exists of an unknown name')
    assert.equal(await served('hello.txt'), `hello from ${RUN_ID}\n`, 'the copied file is served')
    assert.equal(await served('version.txt'), 'v1\n')
  })

  it('rebuilds with a changed last step from the cache, rerunning only that step', { timeout: BUILD_TIMEOUT }, async () => {
    const { logs } = await build(template(dir, 'v2'))
    assert.deepEqual(cachedSteps(logs), [1, 2],
      `steps 1 (RUN) and 2 (COPY) come from the cache and step 3 runs again; the log:\n${logs.join('\n')}`)
    assert.equal(await served('version.txt'), 'v2\n', 'the sandbox runs the new build')
    assert.equal(await served('hello.txt'), `hello from ${RUN_ID}\n`)
  })

  it('builds from a Dockerfile the SDK parses (FROM base is the base template)', { timeout: BUILD_TIMEOUT }, async () => {
    const name = `${NAME}-df`
    const df = Template({ fileContextPath: dir }).fromDockerfile([
      'FROM base',
      'ENV GREETING=from-dockerfile',
      'RUN mkdir -p /opt/df && echo "$GREETING" > /opt/df/greeting.txt',
      'COPY hello.txt /opt/df/',
      'WORKDIR /opt/df'
    ].join('\n'))
    try {
      await build(df, name)
      const sbx = await createSandbox({ template: name })
      // The build's ENV and WORKDIR are the sandbox's environment and working directory;
      // its files are in place.
      const r = await sbx.commands.run('cat greeting.txt hello.txt; echo "$GREETING"; pwd; whoami')
      await killQuietly(sbx)
      assert.equal(r.stdout, `from-dockerfile\nhello from ${RUN_ID}\nfrom-dockerfile\n/opt/df\nuser\n`)
    } finally {
      await deleteTemplate(name)
    }
  })

  it('creates return once the ready check (waitForURL) passes inside the sandbox', { timeout: BUILD_TIMEOUT }, async () => {
    const name = `${NAME}-url`
    // The server comes up only two seconds after the sandbox starts: a create that did
    // not wait for the check would hand out a sandbox whose URL does not answer yet.
    const t = Template({ fileContextPath: dir })
      .fromTemplate('base')
      .runCmd('mkdir -p /srv/site && echo ok > /srv/site/health')
      .setStartCmd(`sleep 2; cd /srv/site && exec python3 -m http.server ${PORT}`, waitForURL(`http://localhost:${PORT}/health`))
    try {
      await build(t, name)
      const sbx = await createSandbox({ template: name })
      const r = await sbx.commands.run(`curl -sf http://localhost:${PORT}/health`)
      await killQuietly(sbx)
      assert.equal(r.stdout, 'ok\n', 'the URL answers as soon as the create returns')
    } finally {
      await deleteTemplate(name)
    }
  })

  it('installs Debian packages (aptInstall) and a local wheel (pipInstall) into the template', { timeout: BUILD_TIMEOUT }, async () => {
    const name = `${NAME}-pkgs`
    const wheel = writeWheel(dir, 'warren_probe', `probe ${RUN_ID}`)
    // base has python3 but not pip: apt brings pip with jq. pipInstall runs
    // `pip install <the wheel's path>` as root: with no index reachable (PIP_NO_INDEX), and
    // past Debian's refusal to touch the system's Python (PEP 668), as E2B's images allow.
    const t = Template({ fileContextPath: dir })
      .fromTemplate('base')
      .aptInstall(['jq', 'python3-pip'], { noInstallRecommends: true })
      .copy(wheel, '/opt/wheels/')
      .setEnvs({ PIP_NO_INDEX: '1', PIP_BREAK_SYSTEM_PACKAGES: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' })
      .pipInstall(`/opt/wheels/${wheel}`)
    try {
      const { logs } = await build(t, name)
      assert.ok(logs.some((l) => /Successfully installed warren-probe-0\.1/.test(l)), `pip's log says it installed the wheel:\n${logs.join('\n')}`)
      const sbx = await createSandbox({ template: name })
      const r = await sbx.commands.run(`echo '{"a": [1, 2]}' | jq -c '.a | add'; python3 -c 'import warren_probe; print(warren_probe.VALUE)'; command -v jq`)
      await killQuietly(sbx)
      assert.equal(r.stdout, `3\nprobe ${RUN_ID}\n/usr/bin/jq\n`, 'jq from apt runs, and the wheel imports as the sandbox\'s user')
    } finally {
      await deleteTemplate(name)
    }
  })

  it('clones a git repository into the template (gitClone with a branch and a depth)', { timeout: BUILD_TIMEOUT }, async () => {
    // No git server is reachable from a build here, so the repository travels with the
    // build's files (a bare repository: no dot files) and gitClone clones it over file://,
    // which runs git's own transport as a clone from any URL does.
    const name = `${NAME}-git`
    const work = path.join(dir, 'git-work')
    const git = (...args) => execFileSync('git', args, { cwd: work, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir } })
    execFileSync('git', ['init', '-q', '-b', 'main', work])
    writeFileSync(path.join(work, 'hello.txt'), `cloned ${RUN_ID}\n`)
    git('add', 'hello.txt')
    git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-m', 'one')
    writeFileSync(path.join(work, 'hello.txt'), `cloned again ${RUN_ID}\n`)
    git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-am', 'two')
    execFileSync('git', ['clone', '-q', '--bare', work, path.join(dir, 'repo.git')])
    const t = Template({ fileContextPath: dir })
      .fromTemplate('base')
      .copy('repo.git', '/opt/repo.git')
      .gitClone('file:///opt/repo.git', '/tmp/clone', { branch: 'main', depth: 1 })
    try {
      await build(t, name)
      const sbx = await createSandbox({ template: name })
      // As root, who owns the clone (git refuses another user's repository).
      const r = await sbx.commands.run('cat /tmp/clone/hello.txt; git -C /tmp/clone rev-list --count HEAD; git -C /tmp/clone branch --show-current',
        { user: 'root' })
      await killQuietly(sbx)
      assert.equal(r.stdout, `cloned again ${RUN_ID}\n1\nmain\n`, 'the clone has the branch\'s last commit alone (depth 1)')
    } finally {
      await deleteTemplate(name)
    }
  })

  it('refuses a build whose step fails, with the step and its exit code', { timeout: BUILD_TIMEOUT }, async () => {
    const bad = Template({ fileContextPath: dir }).fromTemplate('base').runCmd('echo about to fail; exit 3')
    const err = await Template.build(bad, `${NAME}-bad`).then(() => undefined, (e) => e)
    assert.ok(err, 'the build of a failing step succeeded')
    assert.equal(err.name, 'BuildError', `want a BuildError, got ${err}`)
    assert.match(err.message, /exit code 3/)
    await deleteTemplate(`${NAME}-bad`)
  })
})
