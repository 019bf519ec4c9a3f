// The overview's exposed ports: links to services listening inside the sandbox, from
// GET /v1/sandboxes/{id}/ports, or (older servers) from `ss -ltnH` run in the sandbox
// and the sandbox's domain.
import { h, replace } from "../dom.js";
import { get, post } from "../api.js";
import { empty } from "../ui.js";
import { isLive, isPaused } from "../sandboxes-common.js";

/**
 * portsSection is a card listing the sandbox's listening ports as links; its load
 * method lists them again (after a resume).
 */
export function portsSection(ctx, getSb) {
  const body = h("div", null, h("p.muted", null, "Looking for listening ports…"));
  const el = h("section.card", { "aria-labelledby": "h-ports" },
    h("div.card-head", null, h("h2", { id: "h-ports" }, "Exposed ports"),
      h("button.small", { type: "button", onclick: () => load() }, "Refresh")), body);

  async function viaCommand(sb) {
    if (!sb.domain || !ctx.can("sandboxes:write")) return null;
    const res = await post(`/v1/sandboxes/${sb.id}/commands`, { cmd: "ss -ltnH 2>/dev/null || netstat -ltn", timeout: 10 });
    const ports = new Set();
    for (const line of res.stdout.split("\n")) {
      const m = line.match(/\s(?:\S*[:.])(\d+)\s/);
      if (m && !/127\.0\.0\.1|\[::1\]/.test(line)) ports.add(Number(m[1]));
    }
    return [...ports].sort((a, b) => a - b).map((port) => ({ port, url: `http://${port}-${sb.id}.${sb.domain}/` }));
  }

  async function load() {
    const sb = getSb();
    if (isPaused(sb)) return replace(body, h("p.muted", null, "The sandbox is paused: its ports answer again at the same addresses once it is resumed."));
    if (!isLive(sb)) return replace(body, h("p.muted", null, "The sandbox has ended."));
    let ports = null;
    try {
      ports = (await get(`/v1/sandboxes/${sb.id}/ports`, { signal: ctx.signal })).ports;
    } catch (err) {
      if (err.name === "AbortError") return;
      try { ports = await viaCommand(sb); } catch { ports = null; }
    }
    if (ports === null) return replace(body, h("p.muted", null, "This server does not list ports. Services on port N are reachable through the sandbox proxy at N-<sandbox id>.<domain>."));
    if (!ports.length) return replace(body, empty("Nothing is listening.", "Start a server in the sandbox (e.g. python3 -m http.server 8000) and press Refresh."));
    replace(body, h("ul.ports", null, ports.map((p) => h("li", null,
      h("span.mono", null, String(p.port)), " ", h("a", { href: p.url, target: "_blank", rel: "noopener" }, p.url)))));
  }
  load();
  el.load = load;
  return el;
}
