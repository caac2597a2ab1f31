// A self-hosted model's start/stop schedule (admin API /models/{id}/schedule).

import { admin } from "../api.js";
import { h, fill, field, setFieldError, notice } from "../dom.js";

const DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

export function renderSchedule(modelId) {
  const section = h("section.card", {}, h("h2", {}, "Schedule"), h("p", {}, "Loading…"));
  const path = `/models/${encodeURIComponent(modelId)}/schedule`;
  const load = async () => {
    let current = {};
    try {
      current = (await admin("GET", path, undefined, "read the schedule")).scheduling || {};
    } catch (error) {
      fill(section, h("h2", {}, "Schedule"), h("p.muted", {}, error.status === 404 ? "Schedules are not available for this model." : error.message));
      return;
    }
    const type = field("Schedule", h("select", {}, [["", "None: runs until stopped"], ["RECURRING", "Every day"], ["DAILY", "Per weekday"]].map(([v, l]) =>
      h("option", { value: v, selected: (current.scheduleType || "") === v }, l))));
    const timezone = field("Time zone", h("input", { type: "text", value: current.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone }), "IANA name, e.g. Europe/Berlin");
    const day = (name, value) => ({
      start: field(`${name} start`, h("input", { type: "time", value: value?.startTime || "" })),
      stop: field(`${name} stop`, h("input", { type: "time", value: value?.stopTime || "" })),
    });
    const every = day("Daily", current.recurringSchedule);
    const week = Object.fromEntries(DAYS.map((d) => [d, day(d[0].toUpperCase() + d.slice(1), current.dailySchedule?.[d])]));
    const everyRow = h("div.inline", {}, every.start.row, every.stop.row);
    const weekRows = h("div", {}, DAYS.map((d) => h("div.inline", {}, week[d].start.row, week[d].stop.row)));
    const show = () => { everyRow.hidden = type.input.value !== "RECURRING"; weekRows.hidden = type.input.value !== "DAILY"; timezone.row.hidden = !type.input.value; };
    type.input.addEventListener("change", show);
    show();
    const pair = (p) => (p.start.input.value && p.stop.input.value ? { startTime: p.start.input.value, stopTime: p.stop.input.value } : null);
    const form = h("form", { on: { submit: async (event) => {
      event.preventDefault();
      setFieldError(type, "");
      try {
        if (!type.input.value) {
          await admin("DELETE", path, undefined, "remove the schedule");
        } else {
          const body = { scheduleType: type.input.value, timezone: timezone.input.value };
          if (type.input.value === "RECURRING") body.recurringSchedule = pair(every);
          else body.dailySchedule = Object.fromEntries(DAYS.map((d) => [d, pair(week[d])]));
          await admin("PUT", path, body, "save the schedule");
        }
        notice("Schedule saved.");
      } catch (error) {
        setFieldError(type, error.fields?.length ? error.fields.map((p) => `${p.field}: ${p.message}`).join("; ") : error.message);
      }
    } } }, type.row, timezone.row, everyRow, weekRows, h("button", { type: "submit" }, "Save schedule"));
    fill(section, h("h2", {}, "Schedule"), form);
  };
  load();
  return section;
}
