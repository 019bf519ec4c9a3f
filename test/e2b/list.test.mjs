// Sandbox.list through the official `e2b` SDK: metadata filters (the SDK encodes the filter
// three times) and cursor pagination with limit / hasNext / nextItems().
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Sandbox } from 'e2b'
import { HOOK_TIMEOUT, RUN_ID, TEST_TIMEOUT, createSandbox, killAll } from './helpers.mjs'

/** Collects every page of a paginator (bounded, so a server that never ends cannot hang us). */
async function allPages (paginator, maxPages = 20) {
  const pages = []
  while (paginator.hasNext) {
    assert.ok(pages.length < maxPages, `more than ${maxPages} pages`)
    pages.push(await paginator.nextItems())
  }
  return pages
}

describe('Sandbox.list', { timeout: 300_000 }, () => {
  // Unique per run, so sandboxes of other runs or users never match.
  const tag = { 'list-test': `${RUN_ID}-list` }
  // A value that needs escaping at every level of the SDK's encoding.
  const tricky = { 'list-note': `a b&c=d/é%20 ${RUN_ID}` }
  const ids = []

  before(async () => {
    // Sequential: three concurrent creates on a 2-core machine gain little.
    for (let i = 0; i < 3; i++) {
      const sbx = await createSandbox({ metadata: { ...tag, ...(i === 0 ? tricky : {}), index: String(i) }, timeoutMs: 180_000 })
      ids.push(sbx.sandboxId)
    }
  }, { timeout: 3 * HOOK_TIMEOUT })
  after(killAll, { timeout: HOOK_TIMEOUT })

  it('filters by metadata', { timeout: TEST_TIMEOUT }, async () => {
    const paginator = Sandbox.list({ query: { metadata: tag } })
    assert.equal(paginator.hasNext, true, 'a fresh paginator has a first page')
    const items = (await allPages(paginator)).flat()
    assert.deepEqual(items.map((s) => s.sandboxId).sort(), [...ids].sort())
    for (const s of items) {
      assert.equal(s.state, 'running')
      assert.equal(s.metadata['list-test'], tag['list-test'])
      assert.ok(s.templateId, 'templateId')
      assert.ok(s.cpuCount > 0 && s.memoryMB > 0, `cpuCount ${s.cpuCount} memoryMB ${s.memoryMB}`)
      assert.ok(s.startedAt < s.endAt, `startedAt ${s.startedAt} < endAt ${s.endAt}`)
      assert.match(s.envdVersion, /^v?\d+\.\d+\.\d+/)
    }
    const first = items.find((s) => s.sandboxId === ids[0])
    assert.equal(first.metadata['list-note'], tricky['list-note'], 'metadata values come back verbatim')
  })

  it('filters by a metadata value that needs escaping, AND-combined', { timeout: TEST_TIMEOUT }, async () => {
    const items = (await allPages(Sandbox.list({ query: { metadata: { ...tag, ...tricky } } }))).flat()
    assert.deepEqual(items.map((s) => s.sandboxId), [ids[0]])
    const none = (await allPages(Sandbox.list({ query: { metadata: { ...tag, index: 'no-such-index' } } }))).flat()
    assert.deepEqual(none, [], 'a pair no sandbox has matches nothing')
  })

  it('filters by state', { timeout: TEST_TIMEOUT }, async () => {
    const running = (await allPages(Sandbox.list({ query: { metadata: tag, state: ['running'] } }))).flat()
    assert.equal(running.length, 3)
    const paused = (await allPages(Sandbox.list({ query: { metadata: tag, state: ['paused'] } }))).flat()
    assert.deepEqual(paused, [])
  })

  it('pages with limit, hasNext and nextItems()', { timeout: TEST_TIMEOUT }, async () => {
    const paginator = Sandbox.list({ query: { metadata: tag }, limit: 2 })
    const page1 = await paginator.nextItems()
    assert.equal(page1.length, 2, 'first page holds `limit` items')
    assert.equal(paginator.hasNext, true, 'hasNext after a full first page')
    assert.ok(paginator.nextToken, 'nextToken is set from X-Next-Token')
    const page2 = await paginator.nextItems()
    assert.equal(page2.length, 1, 'second page holds the rest')
    assert.equal(paginator.hasNext, false, 'hasNext is false after the last page')
    await assert.rejects(paginator.nextItems(), /No more items/, 'nextItems() past the end')
    const seen = [...page1, ...page2].map((s) => s.sandboxId)
    assert.equal(new Set(seen).size, 3, `pages overlap: ${seen}`)
    assert.deepEqual([...seen].sort(), [...ids].sort())
  })

  it('orders by start time', { timeout: TEST_TIMEOUT }, async () => {
    const asc = (await allPages(Sandbox.list({ query: { metadata: tag }, order: 'asc' }))).flat()
    const desc = (await allPages(Sandbox.list({ query: { metadata: tag }, order: 'desc' }))).flat()
    const times = (xs) => xs.map((s) => s.startedAt.getTime())
    assert.deepEqual(times(asc), [...times(asc)].sort((a, b) => a - b), 'asc is ascending')
    assert.deepEqual(times(desc), [...times(desc)].sort((a, b) => b - a), 'desc is descending')
    if (new Set(times(asc)).size === asc.length) {
      assert.deepEqual(asc.map((s) => s.sandboxId), ids, 'created one after another, so asc is creation order')
    }
  })
})
