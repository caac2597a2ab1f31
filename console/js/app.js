// The console's shell: configuration, sign-in, navigation and the hash router.

import { loadConfig } from "./api.js";
import { completeSignInFromUrl, renderSignIn } from "./auth.js";
import { session } from "./session.js";
import { h, fill, notice } from "./dom.js";
import { renderModels } from "./pages/models.js";
import { renderModelForm } from "./pages/modelForm.js";
import { renderModelDetail } from "./pages/modelDetail.js";
import { renderTokens } from "./pages/tokens.js";
import { renderUsage } from "./pages/usage.js";
import { renderPlayground } from "./pages/playground.js";

const main = document.getElementById("main");
let leave = null; // stops the current page's polling

const ROUTES = [
  [/^\/models\/new$/, () => renderModelForm(main, null), "New model"],
  [/^\/models\/([^/]+)\/edit$/, (m) => renderModelForm(main, decodeURIComponent(m[1])), "Edit model"],
  [/^\/models\/([^/]+)$/, (m) => renderModelDetail(main, decodeURIComponent(m[1])), "Model"],
  [/^\/models$/, () => renderModels(main), "Models"],
  [/^\/tokens$/, () => renderTokens(main), "API tokens"],
  [/^\/usage$/, () => renderUsage(main), "Usage"],
  [/^\/playground$/, (m, params) => renderPlayground(main, params), "Playground"],
];

function chrome() {
  const signedIn = session.signedIn();
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  document.getElementById("who").textContent = signedIn ? session.label() : "";
}

async function route() {
  if (leave) { leave(); leave = null; }
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  chrome();
  if (!session.signedIn() || path === "/sign-in") {
    if (session.signedIn()) { location.hash = "#/models"; return; }
    document.title = "Sign in · LISA console";
    renderSignIn(main, params, () => { location.hash = "#/models"; chrome(); });
    return;
  }
  for (const [pattern, render, title] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    document.title = `${title} · LISA console`;
    for (const link of document.querySelectorAll("#nav a")) {
      if (path.startsWith(link.getAttribute("href").slice(1))) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    fill(main, h("p", {}, "Loading…"));
    try {
      leave = (await render(match, params)) || null;
    } catch (error) {
      fill(main, h("h1", {}, title), h("p.notice.error", { role: "alert" }, error.message));
    }
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true }); // screen readers start reading the new page
    return;
  }
  location.hash = "#/models";
}

async function start() {
  try {
    await loadConfig();
  } catch (error) {
    fill(main, h("p.notice.error", { role: "alert" }, error.message));
    return;
  }
  document.getElementById("sign-out").addEventListener("click", () => {
    session.signOut();
    notice("Signed out.");
    location.hash = "#/sign-in";
    route();
  });
  try {
    if (await completeSignInFromUrl()) location.hash = "#/models";
  } catch (error) {
    notice(error.message, "error");
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
