// The REST API: the messenger's calls over the shared HTTP client (problem+json → ApiError).
import { ApiError, HttpClient } from '../shared/http.js';

export { ApiError };

export class Api {
  constructor(session) {
    this.session = session;
    this.client = new HttpClient({
      token: () => session.accessToken(),
      refresh: () => session.refresh({ force: true }),
      ended: () => session.clear(),
      offline: "Can't reach WhatsEase right now.",
    });
  }

  request(method, path, body, { auth = true } = {}) {
    return this.client.request(method, path, body, { auth });
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

  revokeOtherSessions() {
    return this.request('POST', '/api/v1/auth/sessions/revoke-others');
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

  botLanguage() {
    return this.request('GET', '/api/v1/bot/language');
  }

  setBotLanguage(language) {
    return this.request('PUT', '/api/v1/bot/language', { language });
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
