// Commands and PTYs through the official `e2b` SDK: foreground and background runs, exit
// errors, users, envs, cwd, stdin, kill, list, connect, timeouts, and a PTY session.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CommandExitError, TimeoutError } from 'e2b'
import {
  HOOK_TIMEOUT, TEST_TIMEOUT, bytes, createSandbox, describeError, eventually, killAll,
  rejectsWith, sleep
} from './helpers.mjs'

describe('commands', { timeout: 300_000 }, () => {
  /** @type {import('e2b').Sandbox} */
  let sbx

  before(async () => {
    sbx = await createSandbox({ envs: { SBX_ENV: 'from-create', OVERRIDE_ME: 'create' } })
  }, { timeout: HOOK_TIMEOUT })
  after(killAll, { timeout: HOOK_TIMEOUT })

  it('run returns stdout, stderr and exit code 0, and streams to callbacks', { timeout: TEST_TIMEOUT }, async () => {
    let out = ''
    let err = ''
    const r = await sbx.commands.run('echo out; echo err >&2', {
      onStdout: (d) => { out += d },
      onStderr: (d) => { err += d }
    })
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, 'out\n')
    assert.equal(r.stderr, 'err\n')
    assert.equal(out, 'out\n', 'onStdout saw the output')
    assert.equal(err, 'err\n', 'onStderr saw the output')
  })

  it('a non-zero exit raises CommandExitError with exitCode, stdout and stderr', { timeout: TEST_TIMEOUT }, async () => {
    const e = await rejectsWith(sbx.commands.run('echo partial; echo broken >&2; exit 3'),
      [CommandExitError], 'commands.run() of a command exiting 3')
    assert.equal(e.exitCode, 3, describeError(e))
    assert.equal(e.stdout, 'partial\n')
    assert.equal(e.stderr, 'broken\n')
  })

  it('the default user is `user` with home /home/user', { timeout: TEST_TIMEOUT }, async () => {
    const r = await sbx.commands.run('whoami; id -u; echo "$HOME"; pwd')
    assert.equal(r.stdout, 'user\n1000\n/home/user\n/home/user\n')
  })

  it('user: root runs as root', { timeout: TEST_TIMEOUT }, async () => {
    const r = await sbx.commands.run('whoami; id -u; echo "$HOME"', { user: 'root' })
    assert.equal(r.stdout, 'root\n0\n/root\n')
  })

  it('sandbox envs reach every command; the envs option adds and overrides', { timeout: TEST_TIMEOUT }, async () => {
    const plain = await sbx.commands.run('echo "$SBX_ENV $OVERRIDE_ME ${CMD_ENV:-unset}"')
    assert.equal(plain.stdout, 'from-create create unset\n')
    const withEnvs = await sbx.commands.run('echo "$SBX_ENV $OVERRIDE_ME $CMD_ENV"', {
      envs: { CMD_ENV: 'cmd', OVERRIDE_ME: 'cmd' }
    })
    assert.equal(withEnvs.stdout, 'from-create cmd cmd\n')
  })

  it('cwd sets the working directory', { timeout: TEST_TIMEOUT }, async () => {
    assert.equal((await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout, '/tmp\n')
    await sbx.files.makeDir('/home/user/cwd-test')
    assert.equal((await sbx.commands.run('pwd', { cwd: '/home/user/cwd-test' })).stdout, '/home/user/cwd-test\n')
  })

  it('a background command streams stdout, is killed by handle.kill() and leaves the list', { timeout: TEST_TIMEOUT }, async () => {
    let out = ''
    const h = await sbx.commands.run('for i in $(seq 1 600); do echo tick-$i; sleep 0.1; done', {
      background: true,
      onStdout: (d) => { out += d }
    })
    assert.ok(Number.isInteger(h.pid) && h.pid > 0, `pid ${h.pid}`)
    await eventually(() => out.includes('tick-3\n'), { what: 'background output via onStdout' })
    assert.equal(h.exitCode, undefined, 'still running')

    const listed = (await sbx.commands.list()).find((p) => p.pid === h.pid)
    assert.ok(listed, `commands.list() should show pid ${h.pid}`)
    assert.equal(listed.cmd, '/bin/bash')
    assert.ok(listed.args.some((a) => a.includes('tick-$i')), `args ${JSON.stringify(listed.args)}`)

    assert.equal(await h.kill(), true, 'handle.kill()')
    const e = await rejectsWith(h.wait(), [CommandExitError], 'wait() of a killed command')
    assert.notEqual(e.exitCode, 0, describeError(e))
    assert.ok(h.stdout.includes('tick-3\n'), 'handle.stdout keeps the output')
    await eventually(async () => !(await sbx.commands.list()).some((p) => p.pid === h.pid),
      { what: `pid ${h.pid} to leave commands.list()` })
    assert.equal(await sbx.commands.kill(h.pid), false, 'commands.kill() of a dead pid')
  })

  it('commands.connect re-attaches to a background command after disconnect', { timeout: TEST_TIMEOUT }, async () => {
    const h = await sbx.commands.run('sleep 3; echo second-half; exit 0', { background: true })
    await h.disconnect()
    let out = ''
    const again = await sbx.commands.connect(h.pid, { onStdout: (d) => { out += d } })
    assert.equal(again.pid, h.pid)
    const r = await again.wait()
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, 'second-half\n')
    assert.equal(out, 'second-half\n')
  })

  it('stdin reaches a process (sendStdin, closeStdin)', { timeout: TEST_TIMEOUT }, async () => {
    const h = await sbx.commands.run('cat', { background: true, stdin: true })
    await h.sendStdin('hello ')
    await sbx.commands.sendStdin(h.pid, bytes('world\n'))
    await sleep(200)
    await h.closeStdin()
    const r = await h.wait()
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, 'hello world\n')
  })

  it('without stdin: true a process reads EOF at once', { timeout: TEST_TIMEOUT }, async () => {
    const r = await sbx.commands.run('cat; echo done', { timeoutMs: 20_000 })
    assert.equal(r.stdout, 'done\n')
  })

  it('timeoutMs ends a command with TimeoutError and kills it', { timeout: TEST_TIMEOUT }, async () => {
    await rejectsWith(sbx.commands.run('sleep 60; echo marker-timeout', { timeoutMs: 2_000 }),
      [TimeoutError], 'commands.run(sleep 60, {timeoutMs: 2000})')
    await eventually(async () => !(await sbx.commands.list()).some((p) => p.args.some((a) => a.includes('marker-timeout'))),
      { timeoutMs: 10_000, what: 'the timed-out command to be killed' })
  })

  it('pty: create, sendInput, resize (checked with stty size) and kill', { timeout: TEST_TIMEOUT }, async () => {
    const decoder = new TextDecoder()
    let out = ''
    const pty = await sbx.pty.create({
      cols: 80,
      rows: 24,
      timeoutMs: 60_000,
      onData: (d) => { out += decoder.decode(d, { stream: true }) }
    })
    assert.ok(pty.pid > 0, `pid ${pty.pid}`)
    await sbx.pty.sendInput(pty.pid, bytes('stty size; echo "term=$TERM"\n'))
    await eventually(() => /(?:^|[\r\n])24 80\r?\n/.test(out) && out.includes('term=xterm-256color'),
      { what: `"24 80" from stty size in the PTY output; so far: ${JSON.stringify(out.slice(-300))}` })

    await sbx.pty.resize(pty.pid, { cols: 100, rows: 40 })
    const mark = out.length
    await sbx.pty.sendInput(pty.pid, bytes('stty size\n'))
    await eventually(() => /(?:^|[\r\n])40 100\r?\n/.test(out.slice(mark)),
      { what: '"40 100" from stty size after resize' })

    const listed = (await sbx.commands.list()).find((p) => p.pid === pty.pid)
    assert.ok(listed, 'the PTY shows in commands.list()')

    assert.equal(await sbx.pty.kill(pty.pid), true, 'pty.kill()')
    await rejectsWith(pty.wait(), [CommandExitError], 'wait() of a killed PTY')
    await eventually(async () => !(await sbx.commands.list()).some((p) => p.pid === pty.pid),
      { what: 'the PTY to leave commands.list()' })
  })
})
