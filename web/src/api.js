// The /v1 client: same-origin cookie credentials, the CSRF header on every state change,
// errors as ApiError carrying the API's message, and a redirect to the login page on 401.

/** ApiError is a failed /v1 call; message is the API's own "what to do" text. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.code || "";
    this.requestId = body?.request_id || "";
    this.body = body || {};
  }
}

let onUnauthorized = () => {};

/** setUnauthorizedHandler sets what happens when a call answers 401 (go to the login page). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * csrfToken is the readable CSRF cookie set at login: __Host-warren_csrf over HTTPS,
 * warren_csrf over plain HTTP (the server names it by the connection).
 */
export function csrfToken() {
  const name = location.protocol === "https:" ? "__Host-warren_csrf" : "warren_csrf";
  for (const part of document.cookie.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return "";
}

/**
 * request calls the API. body: a plain object is sent as JSON; a Blob/File/string as is.
 * opts.raw returns the Response instead of decoded JSON; opts.signal aborts.
 */
export async function request(method, path, body, opts = {}) {
  const headers = { Accept: opts.accept || "application/json" };
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers["X-CSRF-Token"] = csrfToken();
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/octet-stream";
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal: opts.signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { message: "Cannot reach the Warren server. Check that it is running and your network, then retry." });
  }
  if (!resp.ok) {
    let data = null;
    try { data = await resp.json(); } catch { /* not JSON */ }
    const err = new ApiError(resp.status, data);
    if (resp.status === 401 && !opts.noRedirect) onUnauthorized(err);
    throw err;
  }
  if (opts.raw) return resp;
  if (resp.status === 204) return null;
  const type = resp.headers.get("Content-Type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body, opts) => request("POST", path, body ?? {}, opts);
export const patch = (path, body, opts) => request("PATCH", path, body, opts);
export const put = (path, body, opts) => request("PUT", path, body, opts);
export const del = (path, opts) => request("DELETE", path, undefined, opts);

/** qs builds a query string from an object, skipping empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** hint adds what to do for an error kind the API's message may not spell out. */
export function hint(err) {
  switch (err.code || err.status) {
    case "forbidden":
    case 403:
      return "Your role does not allow this; ask a team owner or admin.";
    case "rate_limited":
      return `Too many requests: wait ${err.body.retry_after || "a few"} seconds and retry.`;
    case "quota_exceeded":
      return "Your team is at its quota: kill sandboxes you no longer need, or ask an admin to raise it.";
    case "unavailable":
    case 503:
      return "The server is busy or starting: retry in a moment.";
    case "internal":
    case 500:
      return "This is a server problem: retry, and if it persists report the request ID.";
    default:
      return "";
  }
}
