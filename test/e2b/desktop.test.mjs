// The desktop template through the official, unmodified `@e2b/desktop` SDK: Sandbox.create
// (which starts Xvfb and xfce4 with commands), screenshot, screen size, the mouse, typing
// into a text editor whose saved file is read back, and the noVNC stream loaded through
// Warren's proxy in headless Chromium (Debian's, driven by playwright-core).
//
// Environment besides the SDK's: WARREN_CHROMIUM (default /usr/bin/chromium) and
// WARREN_ARTIFACTS (a directory for the screenshots; default test-artifacts/desktop).
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Sandbox } from '@e2b/desktop'
import { chromium } from 'playwright-core'
import { HOOK_TIMEOUT, SUITE_METADATA, describeError, eventually, sleep } from './helpers.mjs'

const WIDTH = 1280
const HEIGHT = 800
const ARTIFACTS = process.env.WARREN_ARTIFACTS || path.join('test-artifacts', 'desktop')
const CHROMIUM = process.env.WARREN_CHROMIUM || '/usr/bin/chromium'
/** Sandbox.create waits up to 10 s for Xvfb and 60 s for xfce4 itself; 30-45 s on 2 busy cores. */
const CREATE_TIMEOUT = 240_000

/** The width and height in a PNG's IHDR chunk (bytes 16-23), after checking the signature. */
function pngSize (buf) {
  const b = Buffer.from(buf)
  assert.ok(b.length > 24, `a PNG has more than 24 bytes, got ${b.length}`)
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature')
  assert.equal(b.subarray(12, 16).toString('latin1'), 'IHDR', 'first PNG chunk')
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) }
}

describe('@e2b/desktop', { timeout: 600_000 }, () => {
  /** @type {Sandbox} */
  let desktop

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    const t0 = Date.now()
    desktop = await Sandbox.create({ resolution: [WIDTH, HEIGHT], timeoutMs: 600_000, metadata: { ...SUITE_METADATA, purpose: 'desktop' } })
    console.log(`Sandbox.create (sandbox, Xvfb and xfce4 up) took ${Date.now() - t0} ms`)
  }, { timeout: CREATE_TIMEOUT })

  after(async () => {
    if (!desktop) return
    try {
      await desktop.kill({ requestTimeoutMs: 30_000 })
    } catch (err) {
      console.error(`cleanup: killing ${desktop.sandboxId}: ${describeError(err)}`)
    }
  }, { timeout: HOOK_TIMEOUT })

  it('creates a sandbox of the desktop template', async () => {
    const info = await desktop.getInfo()
    assert.equal(info.templateId, 'desktop')
    const r = await desktop.commands.run('echo $DISPLAY; id -un')
    assert.equal(r.stdout, ':0\nuser\n', 'commands run as user with the DISPLAY the SDK set')
  })

  it('screenshot() is a PNG of the resolution asked for, and getScreenSize() agrees', async () => {
    const png = await desktop.screenshot()
    assert.ok(png instanceof Uint8Array, `screenshot() returns bytes, got ${typeof png}`)
    assert.deepEqual(pngSize(png), { width: WIDTH, height: HEIGHT })
    assert.ok(png.length > 5_000, `a rendered desktop compresses to more than 5 KB, got ${png.length} bytes`)
    writeFileSync(path.join(ARTIFACTS, 'screenshot.png'), png)
    assert.deepEqual(await desktop.getScreenSize(), { width: WIDTH, height: HEIGHT })
  })

  it('moveMouse moves the pointer', async () => {
    await desktop.moveMouse(321, 234)
    assert.deepEqual(await desktop.getCursorPosition(), { x: 321, y: 234 })
    await desktop.moveMouse(WIDTH - 7, HEIGHT - 9)
    assert.deepEqual(await desktop.getCursorPosition(), { x: WIDTH - 7, y: HEIGHT - 9 })
  })

  it('leftClick and write type into a text editor, whose saved file is read back', async () => {
    const file = '/home/user/from-the-sdk.txt'
    await desktop.files.write(file, '')
    const editor = await desktop.commands.run(`mousepad ${file}`, { background: true, timeoutMs: 0 })
    try {
      const windows = await eventually(async () => {
        const ids = (await desktop.getApplicationWindows('mousepad')).filter(Boolean)
        return ids.length > 0 && ids
      }, { timeoutMs: 60_000, intervalMs: 500, what: 'a mousepad window' })
      const id = windows[windows.length - 1]
      const title = await desktop.getWindowTitle(id)
      assert.match(title, /from-the-sdk\.txt/, `the editor's window title names the file: ${title}`)
      // Click into the middle of the editor's window to give its text area the focus.
      const geo = (await desktop.commands.run(`xdotool getwindowgeometry --shell ${id}`)).stdout
      const val = (k) => Number(geo.match(new RegExp(`^${k}=(\\d+)$`, 'm'))?.[1])
      const [x, y, w, h] = ['X', 'Y', 'WIDTH', 'HEIGHT'].map(val)
      assert.ok(w > 100 && h > 100, `the editor's window geometry: ${geo}`)
      await desktop.leftClick(x + Math.floor(w / 2), y + Math.floor(h / 2))
      assert.equal(await desktop.getCurrentWindowId(), id, 'the clicked editor window has the focus')

      const text = "Hello from @e2b/desktop on Warren: it's typed by xdotool."
      await desktop.write(text)
      await desktop.press(['ctrl', 's'])
      const saved = await eventually(async () => {
        const got = await desktop.files.read(file)
        return got.trim() === text && got
      }, { timeoutMs: 30_000, intervalMs: 300, what: `${file} to hold the typed text` })
      assert.equal(saved.trim(), text)
      writeFileSync(path.join(ARTIFACTS, 'editor.png'), await desktop.screenshot())
    } finally {
      await editor.kill().catch(() => {})
    }
  })

  it('stream.start() serves the desktop over noVNC, through the proxy, in Chromium', async () => {
    await desktop.stream.start()
    try {
      const url = new URL(desktop.stream.getUrl())
      assert.equal(url.host, desktop.getHost(6080), 'the stream URL names the sandbox port 6080')
      assert.equal(url.pathname, '/vnc.html')
      assert.equal(url.searchParams.get('autoconnect'), 'true')
      // The SDK names https (E2B terminates TLS in front of its proxy); the test server's
      // proxy speaks plain HTTP. Chromium resolves *.localhost to loopback by itself.
      url.protocol = 'http:'
      const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
      try {
        const page = await browser.newPage({ viewport: { width: WIDTH, height: HEIGHT } })
        const failed = []
        page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`))
        // Chromium abandons requests in flight with ERR_NETWORK_CHANGED whenever the
        // host's interfaces change, and sandboxes (this one's, other tests') add and
        // remove veths: a page load that lost one of noVNC's modules is loaded again.
        for (let attempt = 1; ; attempt++) {
          failed.length = 0
          await page.goto(url.toString(), { waitUntil: 'load', timeout: 60_000 })
          try {
            // noVNC marks the document connected once the RFB handshake is done.
            await page.waitForFunction(() => {
              const c = document.querySelector('#noVNC_container canvas')
              return c && c.width > 0 && document.documentElement.classList.contains('noVNC_connected')
            }, null, { timeout: 20_000 })
            break
          } catch (err) {
            const state = await page.evaluate(() => `${document.documentElement.className}: ${document.getElementById('noVNC_status')?.textContent}`)
            const why = `attempt ${attempt}: noVNC not connected (${state}); failed requests: ${failed.join(', ') || 'none'}`
            if (attempt >= 4 || failed.length === 0) assert.fail(why)
            console.log(`${why}; loading the page again`)
          }
        }
        const canvas = await page.evaluate(() => {
          const c = document.querySelector('#noVNC_container canvas')
          return { width: c.width, height: c.height }
        })
        assert.deepEqual(canvas, { width: WIDTH, height: HEIGHT }, "noVNC's canvas has the desktop's size")
        // Wait until the framebuffer has arrived: a blank canvas has one colour, the xfce
        // desktop (wallpaper, panel, icons) many.
        const colours = await eventually(async () => {
          const n = await page.evaluate(() => {
            const c = document.querySelector('#noVNC_container canvas')
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
            const seen = new Set()
            for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2])
            return seen.size
          })
          return n >= 50 && n
        }, { timeoutMs: 30_000, intervalMs: 500, what: "noVNC's canvas to show the desktop (50+ colours)" })
        console.log(`noVNC canvas ${canvas.width}x${canvas.height} with ${colours} sampled colours`)
        await sleep(500)
        await page.screenshot({ path: path.join(ARTIFACTS, 'stream.png') })
      } finally {
        await browser.close()
      }
    } finally {
      await desktop.stream.stop()
    }
  })
})
