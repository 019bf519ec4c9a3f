// The terminal tab: xterm.js attached to a PTY in the sandbox over a WebSocket
// (/v1/sandboxes/{id}/terminal). Binary frames carry bytes both ways; text frames carry
// JSON control messages (resize from us, exit from the server). This module and xterm
// are loaded only when the tab opens.
import { h, replace } from "../dom.js";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { errorBanner } from "../ui.js";

/* global TERMINAL_CSS */
function loadCss() {
  if (document.querySelector("link[data-terminal-css]")) return;
  document.head.append(h("link", { rel: "stylesheet", href: TERMINAL_CSS, "data-terminal-css": "" }));
}

// xterm writes its theme and cell sizes into <style> elements, which the console's CSP
// (no inline styles) blocks. While the terminal module is loaded, "style" elements are
// created as inert <xterm-style> elements instead, and their text is mirrored into
// constructed style sheets, which CSP allows.
const mirrored = new Map(); // xterm-style element -> {sheet, text}
function shimInlineStyles(root) {
  if (!document.createElement.shimmed) {
    const create = document.createElement.bind(document);
    const shim = (tag, opts) => (String(tag).toLowerCase() === "style" ? create("xterm-style") : create(tag, opts));
    shim.shimmed = true;
    document.createElement = shim;
  }
  const sync = () => {
    const live = new Set(document.querySelectorAll("xterm-style"));
    for (const el of mirrored.keys()) if (!live.has(el)) mirrored.delete(el);
    let changed = false;
    for (const el of live) {
      let m = mirrored.get(el);
      if (!m) { m = { sheet: new CSSStyleSheet(), text: null }; mirrored.set(el, m); changed = true; }
      if (m.text !== el.textContent) { m.sheet.replaceSync(el.textContent); m.text = el.textContent; }
    }
    if (changed || document.adoptedStyleSheets.length !== mirrored.size) {
      document.adoptedStyleSheets = [...mirrored.values()].map((m) => m.sheet);
    }
  };
  const mo = new MutationObserver(sync);
  mo.observe(root, { subtree: true, childList: true, characterData: true });
  return { sync, stop: () => { mo.disconnect(); sync(); } };
}

function themeColors() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return { background: v("--term-bg"), foreground: v("--term-fg"), cursor: v("--accent"), selectionBackground: v("--term-sel") };
}

/** terminalPanel fills panel with a terminal connected to the sandbox's shell. */
export function terminalPanel(panel, ctx, sb) {
  loadCss();
  const status = h("span.muted", { role: "status" }, "Connecting…");
  const reconnect = h("button", { type: "button", hidden: true, onclick: () => connect() }, "Reconnect");
  const banner = h("div");
  const box = h("div.term", { "aria-label": "Terminal" });
  replace(panel, h("div.term-bar", null, status, reconnect,
    h("span.muted.small", null, "A login shell as user \"user\" in /home/user. Ctrl+D or exit ends it.")), banner, box);

  const term = new Terminal({
    cursorBlink: true, fontSize: 13, scrollback: 5000, screenReaderMode: false,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
    theme: themeColors(),
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  const styles = shimInlineStyles(box);
  term.open(box);
  styles.sync();
  safeFit();
  const enc = new TextEncoder();
  let ws = null;

  function safeFit() {
    try { if (!panel.hidden && box.clientWidth) fit.fit(); } catch { /* not laid out yet */ }
  }

  function send(data) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(data);
  }

  function connect() {
    if (ws && ws.readyState <= WebSocket.OPEN) return;
    replace(banner);
    reconnect.hidden = true;
    status.textContent = "Connecting…";
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const sock = new WebSocket(`${proto}//${location.host}/v1/sandboxes/${sb.id}/terminal?cols=${term.cols}&rows=${term.rows}`);
    sock.binaryType = "arraybuffer";
    let opened = false;
    let exited = false;
    sock.onopen = () => {
      opened = true;
      status.textContent = "Connected";
      send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
      term.focus();
    };
    sock.onmessage = (e) => {
      if (typeof e.data !== "string") return term.write(new Uint8Array(e.data));
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (msg.type === "exit") {
        exited = true;
        term.write(`\r\n\x1b[2m[the shell exited with code ${msg.code}]\x1b[0m\r\n`);
      }
    };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      reconnect.hidden = false;
      if (exited) status.textContent = "Shell exited";
      else if (!opened) {
        status.textContent = "Not connected";
        replace(banner, errorBanner(new Error("Could not open a terminal. Check that the sandbox is running and that your role may write to sandboxes (sandboxes:write), then press Reconnect.")));
      } else status.textContent = `Disconnected${e.reason ? `: ${e.reason}` : ""}`;
    };
    ws = sock;
  }

  term.onData((d) => send(enc.encode(d)));
  term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 255)));
  term.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows })));
  const ro = new ResizeObserver(() => safeFit());
  ro.observe(box);
  ctx.cleanup(() => { ro.disconnect(); ws?.close(1000); ws = null; term.dispose(); styles.stop(); });
  connect();
  return { focus: () => { safeFit(); term.focus(); } };
}
