// The two public APIs, nothing else: the admin API (models, tokens, usage) and the serve API
// (OpenAI-compatible inference). Every call sends the caller's credential as a bearer token.

import { session } from "./session.js";

let config = null;

/** The deployment's /config.json: {mode, adminApiUrl, serveUrl, oidc?}. */
export async function loadConfig() {
  if (!config) {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`The console's configuration could not be loaded (HTTP ${response.status}).`);
    config = await response.json();
    for (const key of ["adminApiUrl", "serveUrl"]) config[key] = String(config[key] || "").replace(/\/+$/, "");
  }
  return config;
}

export function getConfig() {
  return config;
}

/** A failed API call: status, a message a person can act on, and the per-field problems. */
export class ApiError extends Error {
  constructor(status, message, fields = []) {
    super(message);
    this.status = status;
    this.fields = fields; // [{field: "modelUrl", message: "..."}]
  }
}

const FIELD_MESSAGE = /^([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*): (.+)$/s;

/** The field problems an error body names: schema errors (422) and "field: reason" messages (400, 409). */
export function fieldErrors(body) {
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return body.errors.map((e) => ({
      field: String(e.field || "").replace(/^body\.?/, "").replace(/^query\./, ""),
      message: String(e.message || "invalid value"),
    }));
  }
  const match = FIELD_MESSAGE.exec(String(body?.message || ""));
  return match ? [{ field: match[1], message: match[2] }] : [];
}

function explain(status, body, what) {
  const message = body && typeof body.message === "string" ? body.message : "";
  if (status === 401) return "Your sign-in is no longer valid. Sign in again.";
  if (status === 403) return message && !message.startsWith("User is not authorized")
    ? message : `You are not allowed to ${what}.`;
  if (status === 404) return message || "Not found: it may have been deleted.";
  if (status === 429) return "Too many requests right now; wait a moment and try again.";
  if (status >= 500) return `The server could not ${what} (HTTP ${status}). Try again; if it keeps failing, check the logs.`;
  return message || `The request to ${what} was refused (HTTP ${status}).`;
}

async function call(base, method, path, body, what) {
  const headers = { Authorization: `Bearer ${session.token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, `Could not reach the server to ${what}. Check your connection and try again.`);
  }
  let parsed = null;
  const text = await response.text();
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { message: text }; }
  if (response.status === 401) session.expired();
  if (!response.ok) {
    const serveError = parsed && parsed.error && typeof parsed.error === "object" ? parsed.error : null;
    throw new ApiError(response.status, serveError ? serveError.message : explain(response.status, parsed, what),
      fieldErrors(parsed));
  }
  return parsed;
}

/** The admin API: admin("GET", "/models", undefined, "list the models"). */
export function admin(method, path, body, what = "do that") {
  return call(config.adminApiUrl, method, path, body, what);
}

/** The serve API (JSON answers). */
export function serve(method, path, body, what = "do that") {
  return call(config.serveUrl, method, path, body, what);
}

/** A streamed chat completion: calls onText(delta) for each piece; resolves at [DONE]. */
export async function streamChat(body, onText, signal) {
  let response;
  try {
    response = await fetch(`${config.serveUrl}/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${session.token()}`, "Content-Type": "application/json" },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") return;
    throw new ApiError(0, "Could not reach the serve API. Check your connection and try again.");
  }
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, parsed?.error?.message || explain(response.status, parsed, "chat with the model"));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(502, chunk.error.message || "The model stopped with an error.");
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) onText(delta);
      }
    }
  }
}

/** Every page of a listing: pages("/models", "models"). */
export async function allPages(path, key, what) {
  const items = [];
  let next = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await admin("GET", next ? `${path}${sep}nextToken=${encodeURIComponent(next)}` : path, undefined, what);
    items.push(...(page[key] || []));
    next = page.nextToken || null;
  } while (next);
  return items;
}
