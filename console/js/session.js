// Who is signed in: the bearer credential (an API token or an OIDC ID token) for this tab only
// (sessionStorage: gone when the tab closes, never sent anywhere but the two APIs).

const KEY = "lisa.session";

function read() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch { return null; }
}

export const session = {
  token: () => read()?.token || "",
  isAdmin: () => Boolean(read()?.admin),
  label: () => read()?.label || "",
  signedIn: () => Boolean(read()?.token),
  save(token, { admin = false, label = "" } = {}) {
    sessionStorage.setItem(KEY, JSON.stringify({ token, admin, label }));
  },
  signOut() {
    sessionStorage.removeItem(KEY);
  },
  expired() {
    if (read()) {
      sessionStorage.removeItem(KEY);
      location.hash = "#/sign-in?expired=1";
    }
  },
};
