// Usage: requests and tokens by user, model or group over a chosen range (admins: everyone's,
// others: their own), as a bar chart and a table.

import { admin, allPages } from "../api.js";
import { session } from "../session.js";
import { h, fill, field } from "../dom.js";

const COLUMNS = [["requests", "Requests"], ["errors", "Errors"], ["promptTokens", "Prompt tokens"], ["completionTokens", "Completion tokens"], ["totalTokens", "Total tokens"]];

function day(offset) {
  return new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
}

// Through the CSSOM: the Content-Security-Policy refuses style attributes.
function barFill(percent) {
  const fillEl = h("span.bar-fill");
  fillEl.style.width = `${percent}%`;
  return fillEl;
}

/** A horizontal bar chart (plain elements; the numbers are in the table too). */
export function bars(rows, label, value) {
  const max = Math.max(1, ...rows.map(value));
  return h("div.bars", { role: "img", "aria-label": `Chart: ${rows.map((r) => `${label(r)} ${value(r)}`).join(", ")}` },
    rows.map((r) => h("div.bar-row", {}, h("span.bar-label", {}, label(r)),
      h("span.chart-bar", { dataset: { value: value(r) } }, barFill((100 * value(r)) / max)),
      h("span.bar-value", {}, value(r).toLocaleString()))));
}

function table(rows, keyLabel, key) {
  return h("div.table-wrap", {}, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, keyLabel), COLUMNS.map(([, l]) => h("th.num", { scope: "col" }, l)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, h("th", { scope: "row" }, key(r)), COLUMNS.map(([k]) => h("td.num", {}, (r[k] || 0).toLocaleString()))))
      : h("tr", {}, h("td", { colspan: COLUMNS.length + 1 }, "No usage in this range.")))));
}

/** A model's total tokens per day over the last 7 days (admin detail page). */
export function usageChart({ model }) {
  const section = h("section.card", {}, h("h2", {}, "Usage, last 7 days"), h("p", {}, "Loading…"));
  (async () => {
    try {
      const days = [...Array(7).keys()].map((i) => day(i - 6));
      const rows = await Promise.all(days.map(async (d) => {
        const page = await admin("GET", `/usage?from=${d}&to=${d}&groupBy=model`, undefined, "read usage");
        const row = (page.usage || []).find((r) => r.model === model) || {};
        return { day: d, totalTokens: row.totalTokens || 0, requests: row.requests || 0 };
      }));
      fill(section, h("h2", {}, "Usage, last 7 days"), bars(rows, (r) => r.day.slice(5), (r) => r.totalTokens), h("p.hint", {}, "Total tokens per day (UTC)."));
    } catch (error) {
      fill(section, h("h2", {}, "Usage"), h("p.muted", {}, error.message));
    }
  })();
  return section;
}

export function renderUsage(main) {
  const from = field("From", h("input", { type: "date", value: day(-29) }));
  const to = field("To", h("input", { type: "date", value: day(0) }));
  const groupBy = field("Group by", h("select", { disabled: !session.isAdmin() }, [["model", "Model"], ["user", "User"], ["group", "Group"]].map(([v, l]) => h("option", { value: v }, l))));
  const out = h("div.usage", { "aria-live": "polite" });
  const load = async () => {
    fill(out, h("p", {}, "Loading…"));
    try {
      if (session.isAdmin()) {
        const by = groupBy.input.value;
        const rows = await allPages(`/usage?from=${from.input.value}&to=${to.input.value}&groupBy=${by}`, "usage", "read usage");
        rows.sort((a, b) => b.totalTokens - a.totalTokens);
        fill(out, bars(rows, (r) => r[by] || "—", (r) => r.totalTokens), table(rows, by[0].toUpperCase() + by.slice(1), (r) => r[by] || "—"));
      } else {
        const mine = await admin("GET", `/usage/me?from=${from.input.value}&to=${to.input.value}`, undefined, "read your usage");
        const byModel = {};
        for (const r of mine.usage) {
          const t = (byModel[r.model] ||= { model: r.model });
          for (const [k] of COLUMNS) t[k] = (t[k] || 0) + r[k];
        }
        const rows = Object.values(byModel);
        fill(out, bars(rows, (r) => r.model, (r) => r.totalTokens), table(rows, "Model", (r) => r.model));
      }
    } catch (error) {
      fill(out, h("p.notice.error", {}, error.status === 403 && error.message.includes("Missing Authentication Token")
        ? "Usage is not available in this deployment yet." : error.message));
    }
  };
  const form = h("form.filters", { on: { submit: (e) => { e.preventDefault(); load(); } } }, from.row, to.row, groupBy.row, h("button", { type: "submit" }, "Show"));
  fill(main, h("h1", {}, "Usage"), form, out);
  load();
  return null;
}
