// API tokens: create (the value is shown once), list, revoke. Admins see and revoke everyone's.

import { admin, allPages } from "../api.js";
import { session } from "../session.js";
import { h, fill, field, setFieldError, formatTime, copyButton, confirmDialog, notice } from "../dom.js";

export function renderTokens(main) {
  const name = field("Name", h("input", { type: "text", maxLength: 128, autocomplete: "off" }), "A label to recognize the token by.");
  const username = field("For user", h("input", { type: "text", autocomplete: "off" }), "Admins: whose token; empty: yours.");
  const groups = field("Groups", h("input", { type: "text", autocomplete: "off" }), "Admins: comma-separated groups of the token; empty: the user's.");
  const days = field("Valid for (days)", h("input", { type: "number", min: 1, value: 30 }), "Empty: the longest the deployment allows.");
  const created = h("div.created", { "aria-live": "polite" });
  const list = h("tbody");
  const fields = { name, username, groups, tokenExpiration: days };

  const refresh = async () => {
    try {
      const tokens = await allPages("/api-tokens", "tokens", "list the tokens");
      tokens.sort((a, b) => b.createdAt - a.createdAt);
      fill(list, tokens.length ? tokens.map((t) => h("tr", { dataset: { tokenId: t.tokenId } },
        h("th", { scope: "row" }, t.name || "(no name)", h("div.muted", {}, t.tokenId)),
        h("td", {}, t.username), h("td", {}, t.groups.join(", ") || "—"),
        h("td", {}, formatTime(t.createdAt)), h("td", {}, t.expired ? "expired" : formatTime(t.tokenExpiration)),
        h("td", {}, h("button.small.danger", { type: "button", "aria-label": `Revoke ${t.name || t.tokenId}`, on: { click: async () => {
          if (!(await confirmDialog("Revoke this token?", `Requests with "${t.name || t.tokenId}" fail from now on.`, "Revoke"))) return;
          try {
            await admin("DELETE", `/api-tokens/${encodeURIComponent(t.tokenId)}`, undefined, "revoke the token");
            notice("Token revoked.");
            refresh();
          } catch (error) { notice(error.message, "error"); }
        } } }, "Revoke")))) : h("tr", {}, h("td", { colspan: 6 }, "No tokens.")));
    } catch (error) {
      notice(error.message, "error");
    }
  };

  const form = h("form.card", { on: { submit: async (event) => {
    event.preventDefault();
    Object.values(fields).forEach((f) => setFieldError(f, ""));
    const body = { name: name.input.value.trim() };
    if (username.input.value.trim()) body.username = username.input.value.trim();
    if (groups.input.value.trim()) body.groups = groups.input.value.split(",").map((g) => g.trim()).filter(Boolean);
    if (days.input.value) body.tokenExpiration = Math.floor(Date.now() / 1000) + Number(days.input.value) * 86400;
    try {
      const token = await admin("POST", "/api-tokens", body, "create the token");
      const value = h("input.token-value", { type: "text", readOnly: true, value: token.token, "aria-label": "The new token's value" });
      fill(created, h("div.notice.success", {},
        h("p", {}, h("strong", {}, "Copy the token now: it is shown only once."), " LISA keeps only its hash."),
        h("div.inline", {}, value, copyButton(() => token.token, "Copy token"))));
      value.select();
      form.reset();
      refresh();
    } catch (error) {
      let placed = false;
      for (const p of error.fields) if (fields[p.field]) { setFieldError(fields[p.field], p.message); placed = true; }
      if (!placed) setFieldError(name, error.message);
    }
  } } }, h("h2", {}, "Create a token"), name.row,
  session.isAdmin() ? [username.row, groups.row] : null, days.row, h("button", { type: "submit" }, "Create token"));

  fill(main, h("h1", {}, "API tokens"), form, created,
    h("h2", {}, session.isAdmin() ? "Every user's tokens" : "Your tokens"),
    h("div.table-wrap", {}, h("table.tokens", {}, h("thead", {}, h("tr", {}, ["Name", "User", "Groups", "Created", "Expires", ""].map((c) => h("th", { scope: "col" }, c)))), list)));
  refresh();
  return null;
}
