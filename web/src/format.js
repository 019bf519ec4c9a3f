// Formatting of times, durations, sizes and money for people.

/** ago renders the time since t ("3 min", "2 h 5 min"). */
export function ago(t, now = Date.now()) {
  if (!t) return "—";
  return duration(now - Date.parse(t));
}

/** duration renders milliseconds compactly: "45 s", "12 min", "3 h 4 min", "2 d 3 h". */
export function duration(ms) {
  if (!isFinite(ms)) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

/** left renders the time until t, or "ended". */
export function left(t, now = Date.now()) {
  if (!t) return "—";
  const ms = Date.parse(t) - now;
  return ms <= 0 ? "ending" : duration(ms);
}

/** dateTime renders an RFC 3339 time in the user's locale. */
export function dateTime(t) {
  if (!t) return "—";
  const d = new Date(t);
  return isNaN(d) ? t : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** bytes renders a byte count with a binary unit. */
export function bytes(n) {
  if (n === undefined || n === null || !isFinite(n)) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${u[i]}`;
}

/** num renders a number with at most d decimals. */
export const num = (n, d = 1) =>
  n === undefined || n === null ? "—" : Number(n).toLocaleString(undefined, { maximumFractionDigits: d });

/** money renders a decimal string amount with its currency. */
export function money(amount, currency) {
  if (amount === undefined || amount === "") return "—";
  const n = Number(amount);
  try {
    return n.toLocaleString(undefined, { style: "currency", currency: currency || "USD", maximumFractionDigits: 4 });
  } catch {
    return `${amount} ${currency || ""}`.trim();
  }
}

/** kv parses "KEY=value" lines into an object; it throws on a line without "=". */
export function kv(text, what) {
  const out = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`${what}, line ${i + 1}: write KEY=value (got "${line}")`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return out;
}
