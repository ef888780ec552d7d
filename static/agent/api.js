// REST calls for the console over the shared HTTP client: bearer token, one refresh on 401.

import { ApiError, HttpClient, fetchJson } from "../shared/http.js";

export { ApiError };

const AUTH_KEY = "whatsease-console-auth";

export const auth = {
  get() {
    try {
      return JSON.parse(localStorage.getItem(AUTH_KEY) || "null");
    } catch {
      return null;
    }
  },
  set(value) {
    if (value) localStorage.setItem(AUTH_KEY, JSON.stringify(value));
    else localStorage.removeItem(AUTH_KEY);
  },
};

let refreshing = null;

// A new token pair for the stored refresh token; one at a time. A refused refresh logs out.
export async function refresh() {
  const current = auth.get();
  if (!current || !current.refresh_token) throw new ApiError(401, { detail: "Please log in." });
  if (!refreshing) {
    refreshing = fetchJson("/api/v1/auth/refresh", { method: "POST", body: { refresh_token: current.refresh_token } })
      .then((pair) => {
        auth.set({ access_token: pair.access_token, refresh_token: pair.refresh_token, org_route: pair.org_route || "" });
        return pair;
      })
      .catch((error) => {
        if (error.status === 401) auth.set(null);
        throw error;
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

const client = new HttpClient({
  token: async () => { const current = auth.get(); return current && current.access_token; },
  refresh,
  offline: "The server cannot be reached. Check your connection.",
});

export function api(method, path, body) {
  return client.request(method, path, body);
}

export async function login(email, password) {
  const pair = await client.request("POST", "/api/v1/auth/login", { email, password }, { auth: false });
  auth.set({ access_token: pair.access_token, refresh_token: pair.refresh_token, org_route: pair.org_route || "" });
  return pair.user;
}

export async function logout() {
  try {
    await api("POST", "/api/v1/auth/logout", {});
  } catch {
    /* logged out locally either way */
  }
  auth.set(null);
}

// A file (a channel attachment) as a Blob. The token goes in a header, never in the URL;
// a refused request throws ApiError carrying the server's reason ("Media unavailable: ...").
export async function fetchFile(path) {
  const call = () => {
    const current = auth.get();
    return fetch(path, { credentials: "omit", headers: current ? { Authorization: `Bearer ${current.access_token}` } : {} });
  };
  let response;
  try {
    response = await call();
    if (response.status === 401) {
      await refresh();
      response = await call();
    }
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(0, { detail: "The server cannot be reached." });
  }
  if (response.ok) return response.blob();
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    problem = {};
  }
  throw new ApiError(response.status, problem);
}
