// REST calls for the console: bearer token, one refresh on 401, problem+json errors.

const AUTH_KEY = "whatsease-console-auth";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

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

async function raw(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { detail: "The server cannot be reached. Check your connection." });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

let refreshing = null;

export async function refresh() {
  const current = auth.get();
  if (!current || !current.refresh_token) throw new ApiError(401, { detail: "Please log in." });
  if (!refreshing) {
    refreshing = raw("POST", "/api/v1/auth/refresh", { refresh_token: current.refresh_token })
      .then((pair) => {
        auth.set({ access_token: pair.access_token, refresh_token: pair.refresh_token });
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

export async function api(method, path, body) {
  const current = auth.get();
  try {
    return await raw(method, path, body, current && current.access_token);
  } catch (error) {
    if (error.status !== 401 || !current) throw error;
  }
  await refresh();
  return raw(method, path, body, auth.get().access_token);
}

export async function login(email, password) {
  const pair = await raw("POST", "/api/v1/auth/login", { email, password });
  auth.set({ access_token: pair.access_token, refresh_token: pair.refresh_token });
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
