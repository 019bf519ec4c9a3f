// Drives the browser template's Chromium over the Chrome DevTools Protocol through Warren's
// proxy: connects with playwright-core's chromium.connectOverCDP to the browser's WebSocket
// URL (as /json/version named it, sent to the proxy's address with the sandbox host as Host
// header: *.localhost names need not resolve here) with the sandbox's traffic token, opens
// a page served inside the sandbox, reads a text from its DOM and takes a screenshot.
// Prints one JSON line: {"version", "title", "text", "screenshot", "bytes"}.
//
// Environment: WARREN_CDP_WS (ws://<proxy address>/devtools/browser/<id>), WARREN_CDP_HOST
// (<port>-<id>.<domain>), WARREN_TRAFFIC_TOKEN (the sandbox's traffic_token), WARREN_PAGE_URL (a URL as seen from inside
// the sandbox), WARREN_SCREENSHOT (the PNG file to write).
import { chromium } from 'playwright-core'
import { statSync } from 'node:fs'

function need (name) {
  const v = process.env[name]
  if (!v) {
    console.error(`cdp.mjs: ${name} is not set`)
    process.exit(2)
  }
  return v
}

const ws = need('WARREN_CDP_WS')
const host = need('WARREN_CDP_HOST')
const token = need('WARREN_TRAFFIC_TOKEN')
const pageURL = need('WARREN_PAGE_URL')
const shot = need('WARREN_SCREENSHOT')

const browser = await chromium.connectOverCDP(ws, {
  headers: { Host: host, 'E2B-Traffic-Access-Token': token },
  timeout: 60_000
})
try {
  const context = browser.contexts()[0] ?? await browser.newContext()
  const page = await context.newPage()
  await page.goto(pageURL, { waitUntil: 'load', timeout: 60_000 })
  const title = await page.title()
  const text = await page.locator('#message').textContent({ timeout: 10_000 })
  await page.screenshot({ path: shot, fullPage: true })
  await page.close()
  console.log(JSON.stringify({ version: browser.version(), title, text, screenshot: shot, bytes: statSync(shot).size }))
} finally {
  await browser.close()
}
