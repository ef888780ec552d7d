// The REST API: JSON in and out, bearer tokens, problem+json errors as ApiError.
import { NetworkDown, SessionEnded } from './session.js';

export class ApiError extends Error {
  // problem: an RFC 9457 body ({title, detail, status, errors: [{field, message}]}).
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || `The server answered ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.title = problem.title || '';
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }

  // {field: message} for the errors that name a field.
  get fields() {
    const out = {};
    for (const e of this.errors) if (e && e.field && !(e.field in out)) out[e.field] = e.message;
    return out;
  }
}

export class Api {
  constructor(session) {
    this.session = session;
  }

  async request(method, path, body, { auth = true, retried = false } = {}) {
    const headers = { Accept: 'application/json, application/problem+json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = `Bearer ${await this.session.accessToken()}`;
    let response;
    try {
      response = await fetch(path, {
        method, headers, credentials: 'omit',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new NetworkDown();
    }
    if (response.status === 401 && auth && !retried) {
      // The token was revoked or expired early: one refresh, then one retry.
      await this.session.refresh({ force: true });
      return this.request(method, path, body, { auth, retried: true });
    }
    if (response.status === 401 && auth) {
      this.session.clear();
      throw new SessionEnded();
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const problem = data || { detail: `The server answered ${response.status}.` };
      if (response.status === 429 && response.headers.get('Retry-After')) {
        problem.detail = `${problem.detail || 'Too many attempts.'} Try again in ${response.headers.get('Retry-After')} s.`;
      }
      throw new ApiError(response.status, problem);
    }
    return data;
  }

  register(email, name, password) {
    return this.request('POST', '/api/v1/auth/register', { email, name, password }, { auth: false });
  }

  login(email, password) {
    return this.request('POST', '/api/v1/auth/login', { email, password }, { auth: false });
  }

  logout() {
    return this.request('POST', '/api/v1/auth/logout');
  }

  sessions() {
    return this.request('GET', '/api/v1/auth/sessions');
  }

  revokeSession(id) {
    return this.request('DELETE', `/api/v1/auth/sessions/${encodeURIComponent(id)}`);
  }

  me() {
    return this.request('GET', '/api/v1/users/me');
  }

  rename(name) {
    return this.request('PATCH', '/api/v1/users/me', { name });
  }

  deleteAccount() {
    return this.request('DELETE', '/api/v1/users/me');
  }

  searchUsers(q, limit = 20) {
    return this.request('GET', `/api/v1/users?${new URLSearchParams({ q, limit })}`);
  }

  user(email) {
    return this.request('GET', `/api/v1/users/${encodeURIComponent(email)}`);
  }

  chats() {
    return this.request('GET', '/api/v1/chats');
  }

  history(peer, { before, limit = 50 } = {}) {
    const params = new URLSearchParams({ with: peer, limit });
    if (before) params.set('before', before);
    return this.request('GET', `/api/v1/messages?${params}`);
  }

  editMessage(id, content) {
    return this.request('PATCH', `/api/v1/messages/${encodeURIComponent(id)}`, { content });
  }

  deleteMessage(id) {
    return this.request('DELETE', `/api/v1/messages/${encodeURIComponent(id)}`);
  }

  activity({ kinds = [], before, limit = 50 } = {}) {
    const params = new URLSearchParams({ limit });
    for (const kind of kinds) params.append('kind', kind);
    if (before) params.set('before', before);
    return this.request('GET', `/api/v1/activity?${params}`);
  }
}
