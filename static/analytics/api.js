// REST calls for the analytics page: the console's login (same stored tokens), one refresh on 401.

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

async function raw(method, path, body, token, accept = "application/json") {
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { detail: "The server cannot be reached. Check your connection." });
  }
  const text = await res.text();
  if (!res.ok) {
    let problem = null;
    try {
      problem = text ? JSON.parse(text) : null;
    } catch {
      problem = null;
    }
    throw new ApiError(res.status, problem);
  }
  if (accept !== "application/json") return text;
  return text ? JSON.parse(text) : null;
}

let refreshing = null;

async function refresh() {
  const current = auth.get();
  if (!current || !current.refresh_token) throw new ApiError(401, { detail: "Please log in." });
  if (!refreshing) {
    refreshing = raw("POST", "/api/v1/auth/refresh", { refresh_token: current.refresh_token })
      .then((pair) => auth.set({ access_token: pair.access_token, refresh_token: pair.refresh_token }))
      .catch((error) => {
        if (error.status === 401) auth.set(null);
        throw error;
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function api(method, path, body, accept) {
  const current = auth.get();
  try {
    return await raw(method, path, body, current && current.access_token, accept);
  } catch (error) {
    if (error.status !== 401 || !current) throw error;
  }
  await refresh();
  return raw(method, path, body, auth.get().access_token, accept);
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
