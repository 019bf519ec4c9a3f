// Tiny SVG charts: sparklines, time-series line charts, column and bar charts, gauges.
// Colors come from CSS classes (themes), geometry from attributes (no inline styles).
import { h, s } from "./dom.js";

/** sparkline draws values (0..max) as a small line; label describes it for screen readers. */
export function sparkline(values, max, label, cls = "") {
  const w = 80, hgt = 22;
  const svg = s("svg", { class: `spark ${cls}`, viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: "img", "aria-label": label });
  if (values.length < 2) {
    svg.append(s("line", { x1: 0, y1: hgt - 1, x2: w, y2: hgt - 1, class: "spark-empty" }));
    return svg;
  }
  const m = max || Math.max(...values, 1);
  const pts = values.map((v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(hgt - 1 - (Math.min(v, m) / m) * (hgt - 2)).toFixed(1)}`);
  svg.append(s("polyline", { points: `0,${hgt} ${pts.join(" ")} ${w},${hgt}`, class: "spark-area" }),
    s("polyline", { points: pts.join(" "), class: "spark-line" }));
  return svg;
}

/**
 * lineChart draws a time series: points [{t: ms, v}], yMax (0 = auto), fmt for the
 * y-axis labels. The title names the chart for screen readers.
 */
export function lineChart(title, points, { yMax = 0, fmt = String, cls = "" } = {}) {
  const W = 520, H = 170, L = 64, B = 22, T = 8, R = 8;
  const svg = s("svg", { class: `chart ${cls}`, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, preserveAspectRatio: "none" });
  const max = yMax || niceMax(Math.max(1e-9, ...points.map((p) => p.v)));
  const y = (v) => T + (H - T - B) * (1 - Math.min(v, max) / max);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, fmt(v)));
  }
  if (points.length > 1) {
    const t0 = points[0].t, t1 = points[points.length - 1].t, span = Math.max(1, t1 - t0);
    const x = (t) => L + ((W - L - R) * (t - t0)) / span;
    const pts = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
    svg.append(s("polyline", { points: `${L},${y(0)} ${pts} ${W - R},${y(0)}`, class: "area" }),
      s("polyline", { points: pts, class: "line" }),
      s("text", { x: L, y: H - 4, class: "axis" }, clock(t0)),
      s("text", { x: W - R, y: H - 4, class: "axis", "text-anchor": "end" }, clock(t1)));
  } else {
    svg.append(s("text", { x: W / 2, y: H / 2, class: "axis", "text-anchor": "middle" }, "Collecting samples…"));
  }
  return svg;
}

/**
 * columnChart draws stacked columns over time: items [{label, parts: number[]}], one
 * part per series (series: names, for the legend and tooltips).
 */
export function columnChart(title, items, series, fmt = String) {
  const W = 960, H = 240, L = 64, B = 24, T = 8, R = 8;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const total = (it) => it.parts.reduce((a, b) => a + b, 0);
  const max = niceMax(Math.max(1e-9, ...items.map(total)));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, fmt(v)));
  }
  const slot = (W - L - R) / Math.max(1, items.length);
  const every = Math.ceil(items.length / 10);
  items.forEach((it, i) => {
    const x = L + i * slot + slot * 0.15;
    let acc = 0;
    it.parts.forEach((v, k) => {
      if (v <= 0) return;
      svg.append(s("rect", { x, y: y(acc + v), width: Math.max(1, slot * 0.7), height: Math.max(0.5, y(acc) - y(acc + v)), class: `bar s${k % 6}` },
        s("title", null, `${it.label} · ${series[k]}: ${fmt(v)}`)));
      acc += v;
    });
    if (i % every === 0) svg.append(s("text", { x: x + slot * 0.35, y: H - 6, class: "axis", "text-anchor": "middle" }, it.label));
  });
  const legend = series.length > 1
    ? h("ul.legend", null, series.map((name, k) => h("li", null, h(`span.swatch.s${k % 6}`, { "aria-hidden": "true" }), name)))
    : null;
  return h("div", null, svg, legend);
}

/** barList draws labelled horizontal bars [{label, value, href?}] as an accessible list. */
export function barList(items, fmt = String) {
  const max = Math.max(1e-9, ...items.map((i) => i.value));
  return h("ul.barlist", null, items.map((it) => {
    const fill = h("span.bar-fill");
    fill.style.width = `${Math.max(0.5, (100 * it.value) / max)}%`;
    return h("li", null,
      h("span.bar-label", null, it.href ? h("a", { href: it.href }, it.label) : it.label),
      h("span.bar-track", { "aria-hidden": "true" }, fill),
      h("span.bar-value", null, fmt(it.value)));
  }));
}

/** gauge shows used/limit as a meter; limit 0 means unlimited. */
export function gauge(label, used, limit, fmt = String) {
  const pct = limit > 0 ? Math.min(100, (100 * used) / limit) : 0;
  const fill = h(`span.gauge-fill${pct >= 90 ? ".hot" : pct >= 70 ? ".warm" : ""}`);
  fill.style.width = `${pct}%`;
  return h("div.gauge", null,
    h("div.gauge-head", null, h("span", null, label),
      h("span.muted", null, limit > 0 ? `${fmt(used)} of ${fmt(limit)}` : `${fmt(used)} (no limit)`)),
    h("div.gauge-track", {
      role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": limit > 0 ? limit : used || 1, "aria-valuenow": used,
      "aria-valuetext": limit > 0 ? `${fmt(used)} of ${fmt(limit)}` : `${fmt(used)}, unlimited`,
    }, fill));
}

function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const clock = (t) => new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
