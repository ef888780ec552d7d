// The one HTTP client: JSON in and out, problem+json errors as ApiError, one token refresh on 401.
//
// Shared by the messenger, the agent console and the widget (inlined into
// widget.js when it is served). Nothing here touches the DOM.

// A refused request: problem is the RFC 9457 body ({type, title, detail, status, errors}).
export class ApiError extends Error {
  constructor(status, problem = {}) {
    const body = problem && typeof problem === 'object' ? problem : {};
    super(body.detail || body.title || `The server answered ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = body;
    this.title = body.title || '';
    this.code = typeof body.type === 'string' ? body.type.split('/').pop() : '';
    this.errors = Array.isArray(body.errors) ? body.errors : [];
  }

  // {field: message} for the errors that name a field.
  get fields() {
    const out = {};
    for (const e of this.errors) if (e && e.field && !(e.field in out)) out[e.field] = e.message;
    return out;
  }
}

// The server could not be reached at all (offline, DNS, connection refused).
export class NetworkDown extends Error {
  constructor(message = "Can't reach the server right now. Check your connection.") {
    super(message);
    this.name = 'NetworkDown';
  }
}

// The refresh token is gone or refused: the user must log in again.
export class SessionEnded extends Error {
  constructor() {
    super('Your session has ended. Log in again.');
    this.name = 'SessionEnded';
  }
}

// One request. Resolves to the parsed JSON body (null for 204 or an empty body);
// throws NetworkDown when nothing answered and ApiError for any status >= 400.
export async function fetchJson(url, { method = 'GET', body, token, init = {}, offline } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, {
      credentials: 'omit', ...init, method, headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new NetworkDown(offline);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    data = null;
  }
  // A body that is not JSON (the analytics CSV export) comes back as its text.
  if (response.ok) return data === null && text && !/json/.test(response.headers.get('Content-Type') || '') ? text : data;
  const problem = data && typeof data === 'object' ? data : { detail: `The server answered ${response.status}.` };
  const retryAfter = response.headers.get('Retry-After');
  if ((response.status === 429 || response.status === 503) && retryAfter) {
    problem.detail = `${problem.detail || 'Please wait a moment.'} Try again in ${retryAfter} s.`;
  }
  throw new ApiError(response.status, problem);
}

// A client bound to a base URL and a bearer token.
//
// token:   async () => the access token (or null for none)
// refresh: async () => called once when a request answers 401; it gets a new
//          token or throws (SessionEnded when the session is over)
// ended:   () => called when a request is refused even after a refresh
export class HttpClient {
  constructor({ base = '', token = null, refresh = null, ended = null, init = {}, offline } = {}) {
    this.base = base;
    this.token = token;
    this.refresh = refresh;
    this.ended = ended;
    this.init = init;
    this.offline = offline;
  }

  async request(method, path, body, { auth = true } = {}) {
    const call = async () => fetchJson(this.base + path, {
      method, body, init: this.init, offline: this.offline,
      token: auth && this.token ? await this.token() : null,
    });
    try {
      return await call();
    } catch (error) {
      if (!auth || !this.refresh || !(error instanceof ApiError) || error.status !== 401) throw error;
    }
    // The token was revoked or expired early: one refresh, then one retry.
    await this.refresh();
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      if (this.ended) this.ended();
      throw new SessionEnded();
    }
  }
}
