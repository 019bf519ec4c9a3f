// @e2b/code-interpreter against Warren's code-interpreter template: Sandbox.create() asks
// for `code-interpreter-v1`, runCode talks to the interpreter on port 49999 through the
// sandbox proxy, exactly as it does on E2B.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Sandbox as CodeInterpreter } from '@e2b/code-interpreter'
import { HOOK_TIMEOUT, SANDBOX_TIMEOUT, SUITE_METADATA, TEST_TIMEOUT, killQuietly } from './helpers.mjs'

/** Width and height from a PNG's IHDR chunk. */
function pngSize (b64) {
  const buf = Buffer.from(b64, 'base64')
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG', 'a PNG signature')
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) }
}

describe('@e2b/code-interpreter', () => {
  let sbx
  before(async () => {
    sbx = await CodeInterpreter.create({ metadata: SUITE_METADATA, timeoutMs: SANDBOX_TIMEOUT })
  }, { timeout: HOOK_TIMEOUT })
  after(async () => { await killQuietly(sbx) })

  it('keeps state across runCode calls and returns the last expression', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.runCode('x = 20')
    const exec = await sbx.runCode('x + 22')
    assert.equal(exec.text, '42')
    assert.equal(exec.error, undefined)
    assert.ok(exec.executionCount >= 2)
  })

  it('returns a matplotlib chart as a PNG of the figure size', { timeout: TEST_TIMEOUT }, async () => {
    const exec = await sbx.runCode([
      'import matplotlib.pyplot as plt',
      'fig = plt.figure(figsize=(4, 3), dpi=100)',
      'plt.plot([1, 2, 3], [3, 1, 2])',
      'plt.show()'
    ].join('\n'))
    assert.equal(exec.error, undefined, JSON.stringify(exec.error))
    const png = exec.results.find((r) => r.png)
    assert.ok(png, `a png result among ${JSON.stringify(exec.results.map((r) => r.formats()))}`)
    assert.deepEqual(pngSize(png.png), { width: 400, height: 300 })
    // The figure's data, extracted as E2B's code interpreter does (result.chart).
    assert.equal(png.chart?.type, 'line', `chart: ${JSON.stringify(png.chart)}`)
    assert.deepEqual(png.chart.elements.map((e) => e.points), [[[1, 3], [2, 1], [3, 2]]])
    assert.equal(png.chart.x_scale, 'linear')
  })

  it('returns bar and pie chart data', { timeout: TEST_TIMEOUT }, async () => {
    const exec = await sbx.runCode([
      'import matplotlib.pyplot as plt',
      'fig, (a, b) = plt.subplots(1, 2)',
      'fig.suptitle("Sales")',
      'a.bar(["x", "y"], [2, 5])',
      'b.pie([1, 3], labels=["p", "q"])',
      'plt.show()'
    ].join('\n'))
    assert.equal(exec.error, undefined, JSON.stringify(exec.error))
    const chart = exec.results.find((r) => r.chart)?.chart
    assert.equal(chart?.type, 'superchart', `chart: ${JSON.stringify(chart)}`)
    assert.equal(chart.title, 'Sales')
    const [bar, pie] = chart.elements
    assert.deepEqual(bar.elements.map((e) => [e.label, e.value]), [['x', 2], ['y', 5]])
    assert.deepEqual(pie.elements.map((e) => [e.label, e.angle]), [['p', 90], ['q', 270]])
  })

  it('returns a DataFrame as HTML and text', { timeout: TEST_TIMEOUT }, async () => {
    const exec = await sbx.runCode('import pandas as pd\npd.DataFrame({"a": [1, 2], "b": [3, 4]})')
    const main = exec.results.find((r) => r.isMainResult)
    assert.ok(main?.html?.includes('<table'), `html: ${main?.html}`)
    assert.match(main.text, /a\s+b/)
    assert.deepEqual(main.data, { a: [1, 2], b: [3, 4] }, 'the columns as data, as E2B gives them')
    assert.ok(main.formats().includes('data'), `formats: ${main.formats()}`)
  })

  it('returns a dict as JSON', { timeout: TEST_TIMEOUT }, async () => {
    const exec = await sbx.runCode('{"name": "warren", "n": [1, 2]}')
    const main = exec.results.find((r) => r.isMainResult)
    assert.deepEqual(main?.json, { name: 'warren', n: [1, 2] })
    assert.equal(main.text, "{'name': 'warren', 'n': [1, 2]}")
  })

  it('reports 1/0 as ZeroDivisionError with a traceback, and the next call still works', { timeout: TEST_TIMEOUT }, async () => {
    const exec = await sbx.runCode('1/0')
    assert.equal(exec.error?.name, 'ZeroDivisionError')
    assert.match(exec.error.traceback, /ZeroDivisionError/)
    const next = await sbx.runCode('x')
    assert.equal(next.text, '20')
  })

  it('isolates variables between contexts', { timeout: TEST_TIMEOUT }, async () => {
    const a = await sbx.createCodeContext()
    const b = await sbx.createCodeContext({ language: 'python' })
    await sbx.runCode('secret = "only in a"', { context: a })
    const inB = await sbx.runCode('secret', { context: b })
    assert.equal(inB.error?.name, 'NameError')
    const inA = await sbx.runCode('secret', { context: a })
    assert.equal(inA.text, 'only in a', 'text/plain with the quotes of a str repr stripped (as E2B does)')
    const quoted = await sbx.runCode('"it\'s"', { context: a })
    assert.equal(quoted.text, "it's", 'a double-quoted repr loses its quotes too (as E2B does)')
    const ids = (await sbx.listCodeContexts()).map((c) => c.id)
    assert.ok(ids.includes(a.id) && ids.includes(b.id), `contexts ${ids}`)
    await sbx.restartCodeContext(a)
    const afterRestart = await sbx.runCode('secret', { context: a })
    assert.equal(afterRestart.error?.name, 'NameError', 'a restart clears state')
    await sbx.removeCodeContext(a)
    await sbx.removeCodeContext(b.id)
  })

  it('delivers onStdout in order while the cell runs', { timeout: TEST_TIMEOUT }, async () => {
    const seen = []
    const start = Date.now()
    await sbx.runCode('import time\nfor i in range(3):\n    print(f"tick {i}", flush=True)\n    time.sleep(0.5)', {
      onStdout: (m) => seen.push({ line: m.line, at: Date.now() - start })
    })
    assert.deepEqual(seen.map((s) => s.line.trim()), ['tick 0', 'tick 1', 'tick 2'])
    assert.ok(seen[2].at - seen[0].at >= 700, `lines arrived as they were printed: ${JSON.stringify(seen)}`)
  })

  it('interrupts a while True cell at its timeout and keeps the context', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.runCode('kept = 7')
    const t0 = Date.now()
    await assert.rejects(sbx.runCode('while True:\n    pass', { timeoutMs: 2000 }), (err) => {
      assert.match(err.constructor.name, /Timeout/, `${err.constructor.name}: ${err.message}`)
      return true
    })
    assert.ok(Date.now() - t0 < 15_000)
    const exec = await sbx.runCode('kept * 6')
    assert.equal(exec.text, '42', JSON.stringify(exec.error))
  })

  it('keeps state in javascript and bash contexts', { timeout: TEST_TIMEOUT }, async () => {
    await sbx.runCode('let a = 2', { language: 'javascript' })
    const js = await sbx.runCode('a * 21', { language: 'javascript' })
    assert.equal(js.text, '42')
    await sbx.runCode('X=7', { language: 'bash' })
    const sh = await sbx.runCode('echo $((X * 6))', { language: 'bash' })
    assert.equal(sh.logs.stdout.join('').trim(), '42')
  })

  it('sets env vars for one execution only', { timeout: TEST_TIMEOUT }, async () => {
    const exec = await sbx.runCode('import os\nos.environ.get("ONLY_NOW")', { envs: { ONLY_NOW: 'yes' } })
    assert.equal(exec.text, 'yes')
    // None is not displayed (as in Jupyter), so ask for its repr.
    const later = await sbx.runCode('import os\nrepr(os.environ.get("ONLY_NOW"))')
    assert.equal(later.text, 'None')
  })
})
