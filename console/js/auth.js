// Signing in: the local one-time link, the OIDC provider (authorization code with PKCE, no client
// secret), or a pasted API token. The result is a bearer credential in `session`.

import { admin, getConfig, ApiError } from "./api.js";
import { session } from "./session.js";
import { h, fill, field, setFieldError } from "./dom.js";

const PKCE_KEY = "lisa.pkce";

/** Whether the caller is an admin: only admins may read everyone's usage or see full model records. */
async function probeAdmin() {
  try {
    const today = new Date().toISOString().slice(0, 10);
    await admin("GET", `/usage?from=${today}&to=${today}&limit=1`, undefined, "check your role");
    return true;
  } catch (error) {
    if (error.status === 401) throw error;
  }
  try {
    const page = await admin("GET", "/models?limit=1", undefined, "check your role");
    return Boolean(page.models?.[0] && "allowedGroups" in page.models[0]);
  } catch {
    return false;
  }
}

async function finish(token, label) {
  session.save(token, { label });
  const isAdmin = await probeAdmin();
  session.save(token, { admin: isAdmin, label: `${label}${isAdmin ? " (admin)" : ""}` });
}

/** Handle a sign-in carried by the URL: the local link's #code=, or the OIDC redirect's ?code=. */
export async function completeSignInFromUrl() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.has("code")) {
    const code = hash.get("code");
    history.replaceState(null, "", location.pathname); // the code leaves the address bar at once
    const response = await fetch("local/sign-in", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.message || "The sign-in link did not work.");
    await finish(body.token, "local admin");
    return true;
  }
  const query = new URLSearchParams(location.search);
  if (query.has("code") && query.has("state")) {
    history.replaceState(null, "", location.pathname);
    await exchangeOidcCode(query.get("code"), query.get("state"));
    return true;
  }
  if (query.has("error")) {
    history.replaceState(null, "", location.pathname);
    throw new Error(`The identity provider refused the sign-in: ${query.get("error_description") || query.get("error")}`);
  }
  return false;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function discover(issuer) {
  const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error("The identity provider's configuration could not be read.");
  return response.json();
}

function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

async function startOidc() {
  const { oidc } = getConfig();
  const metadata = await discover(oidc.issuer);
  const verifier = randomString();
  const state = randomString();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: oidc.scope || "openid profile email",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

async function exchangeOidcCode(code, state) {
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  sessionStorage.removeItem(PKCE_KEY);
  if (!saved || saved.state !== state) throw new Error("The sign-in did not match this browser tab; start it again.");
  const { oidc } = getConfig();
  const metadata = await discover(oidc.issuer);
  const response = await fetch(metadata.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: oidc.clientId,
      code_verifier: saved.verifier,
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.id_token) throw new Error(body.error_description || "The identity provider did not issue a token.");
  const claims = JSON.parse(atob(body.id_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  await finish(body.id_token, claims.email || claims.preferred_username || claims.sub || "signed in");
}

/** The sign-in page. */
export function renderSignIn(main, params, done) {
  const config = getConfig();
  const tokenField = field("API token", h("input", { type: "password", autocomplete: "off", required: true, spellcheck: false }),
    "An API token from `lisa token create`, another admin, or this console's API tokens page.");
  const form = h("form.card", {
    on: {
      submit: async (event) => {
        event.preventDefault();
        const token = tokenField.input.value.trim();
        if (!token) return setFieldError(tokenField, "Paste a token first.");
        setFieldError(tokenField, "");
        try {
          await finish(token, "API token");
          done();
        } catch (error) {
          session.signOut();
          setFieldError(tokenField, error instanceof ApiError && error.status === 401
            ? "This token is not valid (revoked, expired or mistyped)." : error.message);
        }
      },
    },
  }, h("h2", {}, "Use an API token"), tokenField.row, h("button", { type: "submit" }, "Sign in with the token"));
  fill(main,
    h("h1", {}, "Sign in"),
    params.get("expired") ? h("p.notice.error", {}, "Your sign-in ended. Sign in again.") : null,
    config.oidc ? h("section.card", {},
      h("h2", {}, "Single sign-on"),
      h("button", { type: "button", on: { click: () => startOidc().catch((e) => alertIn(main, e)) } }, "Sign in with your organization")) : null,
    config.mode === "local" ? h("p.card", {}, "Local mode: open the sign-in link `make local` printed (it is also `consoleUrl` in .lisa/local.json). Each link works once.") : null,
    form);
}

function alertIn(main, error) {
  main.prepend(h("p.notice.error", { role: "alert" }, error.message));
}
