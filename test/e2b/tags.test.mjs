// Template tags through the official `e2b` SDK, unchanged: Template.build(t, 'name:v1')
// builds a tagged version and leaves the default alone, Template.build(t, 'name') builds
// the default, Sandbox.create('name:v1') starts the tagged build, Template.getTags lists
// them, Template.assignTags points a new tag at a build and Template.removeTags removes it.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Template } from 'e2b'
import { HOOK_TIMEOUT, RUN_ID, createSandbox, killAll, killQuietly } from './helpers.mjs'

const BUILD_TIMEOUT = 300_000

/** The template this file builds; deleted in `after`. */
const NAME = `sdk-tags-${RUN_ID}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 60)

/** A template whose /srv/version holds version. */
function version (v) {
  return Template().fromTemplate('base').runCmd(`mkdir -p /srv && echo ${v} > /srv/version`)
}

/** What /srv/version holds in a new sandbox of template. */
async function versionOf (template) {
  const sbx = await createSandbox({ template })
  try {
    return (await sbx.files.read('/srv/version')).trim()
  } finally {
    await killQuietly(sbx)
  }
}

/** {tag: buildId} of the template's tags. */
async function tags () {
  const out = {}
  for (const t of await Template.getTags(NAME)) out[t.tag] = t.buildId
  return out
}

describe('template tags', { timeout: 3 * BUILD_TIMEOUT }, () => {
  after(async () => {
    await killAll()
    const res = await fetch(`${process.env.E2B_API_URL}/templates/${NAME}`, {
      method: 'DELETE', headers: { 'X-API-Key': process.env.E2B_API_KEY }
    })
    if (res.status !== 204 && res.status !== 404) console.error(`cleanup: deleting ${NAME}: ${res.status} ${await res.text()}`)
  }, { timeout: HOOK_TIMEOUT })

  it('builds a tagged version and the default, and starts each by name', { timeout: 2 * BUILD_TIMEOUT }, async () => {
    const v1 = await Template.build(version('one'), `${NAME}:v1`)
    const def = await Template.build(version('two'), NAME)
    assert.notEqual(v1.buildId, def.buildId)
    assert.deepEqual(await tags(), { default: def.buildId, v1: v1.buildId })
    assert.equal(await versionOf(`${NAME}:v1`), 'one')
    assert.equal(await versionOf(NAME), 'two')
    assert.equal(await versionOf(`${NAME}:default`), 'two')
  })

  it('assigns a tag to the build another tag names, and removes it', { timeout: BUILD_TIMEOUT }, async () => {
    const before = await tags()
    const res = await Template.assignTags(`${NAME}:v1`, 'prod')
    assert.equal(res.buildId, before.v1)
    assert.deepEqual(res.tags, ['prod'])
    assert.equal((await tags()).prod, before.v1)
    assert.equal(await versionOf(`${NAME}:prod`), 'one')

    await Template.removeTags(NAME, 'prod')
    assert.equal((await tags()).prod, undefined)
    await assert.rejects(createSandbox({ template: `${NAME}:prod` }), /does not exist|not found/i,
      'a removed tag no longer starts sandboxes')
    await assert.rejects(Template.removeTags(NAME, 'default'), /default tag cannot be removed/)
    await assert.rejects(Template.assignTags(`${NAME}:nope`, 'x'), /not found/i)
  })
})
