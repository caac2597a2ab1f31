// The models page: every model the caller may see, live (polled every 2 s), with filters and the
// admin actions (start, stop, delete with confirmation).

import { admin, allPages } from "../api.js";
import { session } from "../session.js";
import { h, fill, notice, changeNotice, confirmDialog, field } from "../dom.js";
import { STATUSES, TYPES, statusBadge, observe, poll, kindOf } from "../status.js";

export const REFRESH_MS = 2000;

export async function setEnabled(modelId, enabled) {
  await admin("PUT", `/models/${encodeURIComponent(modelId)}`, { enabled }, enabled ? `start ${modelId}` : `stop ${modelId}`);
  notice(`${enabled ? "Starting" : "Stopping"} ${modelId}…`);
}

export async function deleteModel(modelId) {
  const ok = await confirmDialog(`Delete ${modelId}?`,
    `The model and its resources are removed, and requests for ${modelId} fail from then on. This cannot be undone.`,
    "Delete");
  if (!ok) return false;
  const answer = await admin("DELETE", `/models/${encodeURIComponent(modelId)}`, undefined, `delete ${modelId}`);
  changeNotice(`Deleting ${modelId}…`, answer);
  return true;
}

export function actions(model, after) {
  if (!session.isAdmin()) return null;
  const id = model.modelId;
  const run = (fn) => async () => {
    try { await fn(); await after(); } catch (error) { notice(error.message, "error"); }
  };
  const busy = ["Creating", "Updating", "Stopping", "Starting", "Deleting"].includes(model.status);
  return h("div.actions", {},
    model.status === "Stopped"
      ? h("button.small", { type: "button", on: { click: run(() => setEnabled(id, true)) }, "aria-label": `Start ${id}` }, "Start")
      : h("button.small", { type: "button", disabled: busy || model.status !== "InService", on: { click: run(() => setEnabled(id, false)) }, "aria-label": `Stop ${id}` }, "Stop"),
    h("a.button.small", { href: `#/models/${encodeURIComponent(id)}/edit`, "aria-label": `Edit ${id}` }, "Edit"),
    h("button.small.danger", { type: "button", disabled: model.status === "Deleting", on: { click: run(() => deleteModel(id)) }, "aria-label": `Delete ${id}` }, "Delete"));
}

export function renderModels(main) {
  const statusFilter = field("Status", h("select", {}, h("option", { value: "" }, "All"), STATUSES.map((s) => h("option", { value: s }, s))));
  const typeFilter = field("Type", h("select", {}, h("option", { value: "" }, "All"), TYPES.map((t) => h("option", { value: t }, t))));
  const body = h("tbody");
  const summary = h("p.muted", { "aria-live": "polite" });
  let models = [];

  let drawn = "";
  const draw = () => {
    const shown = models.filter((m) => (!statusFilter.input.value || m.status === statusFilter.input.value)
      && (!typeFilter.input.value || m.modelType === typeFilter.input.value));
    summary.textContent = `${shown.length} of ${models.length} models · updates every ${REFRESH_MS / 1000} s`;
    // Redraw only on a change, and keep the keyboard focus on the same control when it is redrawn.
    const state = JSON.stringify([shown, models.length]);
    if (state === drawn) return;
    drawn = state;
    const focused = body.contains(document.activeElement)
      ? document.activeElement.getAttribute("aria-label") || document.activeElement.getAttribute("href") : null;
    fill(body, shown.length ? shown.map((m) => h("tr", { dataset: { modelId: m.modelId } },
      h("th", { scope: "row" }, h("a", { href: `#/models/${encodeURIComponent(m.modelId)}` }, m.modelId),
        h("div.muted", {}, m.modelName)),
      h("td", {}, statusBadge(m.status), m.status === "Failed" && m.statusReason ? h("div.reason", {}, m.statusReason) : null),
      h("td", {}, m.modelType),
      h("td", {}, kindOf(m), m.hostingType ? h("div.muted", {}, m.hostingType) : null),
      h("td", {}, m.instanceType || "—"),
      h("td", {}, m.autoScalingConfig?.scheduling?.scheduleType || (m.idleStopMinutes ? `idle stop ${m.idleStopMinutes} min` : "—")),
      h("td", {}, actions(m, refresh)))) : h("tr", {}, h("td", { colspan: 7 }, models.length ? "No model matches the filters." : "No models yet.")));
    if (focused) {
      const again = [...body.querySelectorAll("a, button")].find((el) =>
        (el.getAttribute("aria-label") || el.getAttribute("href")) === focused);
      again?.focus();
    }
  };
  const refresh = async () => {
    try {
      models = await allPages("/models", "models", "list the models");
      models.forEach(observe);
      draw();
    } catch (error) {
      summary.textContent = `${error.message} (retrying)`;
    }
  };
  statusFilter.input.addEventListener("change", draw);
  typeFilter.input.addEventListener("change", draw);

  fill(main,
    h("div.heading", {}, h("h1", {}, "Models"),
      session.isAdmin() ? h("a.button", { href: "#/models/new" }, "New model") : null),
    h("div.filters", {}, statusFilter.row, typeFilter.row),
    summary,
    h("div.table-wrap", {}, h("table.models", {},
      h("caption.visually-hidden", {}, "Models and their status"),
      h("thead", {}, h("tr", {}, ["Model", "Status", "Type", "Hosting", "Instance type", "Schedule", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
      body)));
  return poll(refresh, REFRESH_MS);
}
