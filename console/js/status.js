// Model statuses: which are settled, how they look, and the history this tab has watched.

export const STATUSES = ["Creating", "InService", "Updating", "Stopping", "Stopped", "Starting", "Deleting", "Failed"];
export const TRANSITIONAL = new Set(["Creating", "Updating", "Stopping", "Starting", "Deleting"]);
export const TYPES = ["textgen", "embedding", "imagegen", "videogen", "tts", "stt", "rerank"];
/** The model types that cannot stream (the schema's NON_STREAMING_TYPES): the form sends streaming false. */
export const NON_STREAMING_TYPES = ["embedding", "rerank"];

import { h } from "./dom.js";

export function statusBadge(status) {
  return h(`span.badge.s-${String(status).toLowerCase()}`, { dataset: { status } },
    TRANSITIONAL.has(status) ? h("span.spinner", { "aria-hidden": "true" }) : null, status);
}

const HISTORY_KEY = "lisa.statusHistory";

function load() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "{}"); } catch { return {}; }
}

/** Record the status a model has now; returns its history [{status, reason, at}] (oldest first). */
export function observe(model) {
  const all = load();
  const history = all[model.modelId] || [];
  const last = history[history.length - 1];
  if (!last || last.status !== model.status) {
    history.push({ status: model.status, reason: model.statusReason || "", at: Date.now(),
      since: model.updatedAt ? model.updatedAt * 1000 : Date.now() });
    all[model.modelId] = history.slice(-50);
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(all));
  } else if (model.statusReason && last.reason !== model.statusReason) {
    last.reason = model.statusReason;
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(all));
  }
  return all[model.modelId];
}

export function history(modelId) {
  return load()[modelId] || [];
}

/** Which kind of model a record is: "bedrock", "external" or "self-hosted". */
export function kindOf(model) {
  if (model.inferenceContainer || model.containerConfig) return "self-hosted";
  if (String(model.modelName || "").startsWith("bedrock/")) return "bedrock";
  return model.modelUrl ? "external" : (model.hostingType === "lisa_hosted" ? "self-hosted" : "external");
}

/** Poll `load` every `ms` until the returned stop() is called; never overlaps two calls. */
export function poll(load, ms) {
  let stopped = false;
  let timer;
  const tick = async () => {
    if (stopped) return;
    try { await load(); } finally { if (!stopped) timer = setTimeout(tick, ms); }
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
