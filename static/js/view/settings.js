// The settings page: profile name, sessions with revoke, log out, delete account.
import { fillAvatar, h, icon } from '../dom.js';
import { fullTime, listTime } from '../format.js';

export class SettingsView {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector('.profile-form');
    this.nameInput = root.querySelector('#profile-name');
    this.nameError = root.querySelector('#profile-name-error');
    this.status = root.querySelector('.form-status');
    this.sessions = root.querySelector('.sessions');
    this.revokeOthers = root.querySelector('.revoke-others-btn');
    this.handlers = {};
    document.title = 'Settings · WhatsEase';
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.fire('rename', this.nameInput.value);
    });
    // One delegated listener for every session's revoke button.
    this.sessions.addEventListener('click', (e) => {
      const button = e.target.closest('[data-session]');
      if (button) this.fire('revoke', button.dataset.session, button.dataset.current === 'true');
    });
    this.revokeOthers.addEventListener('click', () => this.fire('revokeOthers'));
    this.assistant = root.querySelector('.assistant-card');
    this.language = root.querySelector('#assistant-language');
    this.languageStatus = root.querySelector('.assistant-status');
    this.language.addEventListener('change', () => this.fire('language', this.language.value || null));
    root.querySelector('.logout-btn').addEventListener('click', () => this.fire('logout'));
    root.querySelector('.delete-btn').addEventListener('click', () => this.fire('deleteAccount'));
  }

  bind(event, handler) {
    this.handlers[event] = handler;
  }

  fire(event, ...args) {
    if (this.handlers[event]) this.handlers[event](...args);
  }

  renderProfile(user) {
    fillAvatar(this.root.querySelector('.profile-avatar'), user.name, user.email);
    this.root.querySelector('.profile-name').textContent = user.name;
    this.root.querySelector('.profile-email').textContent = user.email;
    if (document.activeElement !== this.nameInput) this.nameInput.value = user.name;
  }

  renderNameState({ busy = false, error = '', saved = false }) {
    this.form.querySelector('button').disabled = busy;
    this.nameError.textContent = error;
    this.nameInput.setAttribute('aria-invalid', String(Boolean(error)));
    this.status.textContent = saved ? 'Saved.' : '';
    if (error) this.nameInput.focus();
  }

  // The assistant's language: "Automatic" and each language it speaks, by its own name.
  renderLanguage({ language, languages }) {
    this.language.replaceChildren(
      h('option', { value: '', text: 'Automatic' }),
      ...languages.map((code) => h('option', { value: code, text: LANGUAGE_NAMES[code] || code, lang: code })));
    this.language.value = language || '';
    this.assistant.hidden = false;
  }

  renderLanguageState({ saved = false, error = '' }) {
    this.languageStatus.textContent = error || (saved ? 'Saved.' : '');
  }

  renderSessions(sessions, { error } = {}) {
    this.sessions.setAttribute('aria-busy', 'false');
    this.revokeOthers.hidden = Boolean(error) || !sessions.some((s) => !s.current);
    if (error) {
      this.sessions.replaceChildren(h('li', { class: 'session is-error', text: error }));
      return;
    }
    this.sessions.replaceChildren(...sessions.map((s) => {
      const what = describeSession(s);
      return h('li', { class: 'session' },
        h('span', { class: 'session-icon', 'aria-hidden': 'true' }, icon('device')),
        h('span', { class: 'session-main' },
          h('span', { class: 'session-device', text: what },
            s.current ? h('span', { class: 'tag', text: 'This device' }) : null),
          h('span', { class: 'session-meta' }, 'Active ',
            h('time', { datetime: s.last_active, title: fullTime(s.last_active), text: listTime(s.last_active) }),
            ' · signed in ', h('time', { datetime: s.created_at, title: fullTime(s.created_at), text: listTime(s.created_at) }),
            s.place ? ` · near ${s.place}` : '')),
        h('button', {
          type: 'button', class: 'btn btn-small', dataset: { session: s.id, current: String(Boolean(s.current)) },
          'aria-label': s.current ? 'Log out of this device' : `Log out ${what}, signed in ${listTime(s.created_at)}`,
          text: 'Log out',
        }));
    }));
  }
}

// Each language's name in itself, as the language select shows it.
const LANGUAGE_NAMES = { en: 'English', es: 'Español', hi: 'हिंदी', ta: 'தமிழ்' };

// "Chrome 120 on a Linux computer", from the server's reading of the user agent.
export function describeSession(s) {
  const device = s.device || 'Unknown device';
  const browser = s.browser || 'Unknown browser';
  if (device === 'Unknown device') return browser;
  return `${browser} on ${/^[aeiou]/i.test(device) ? 'an' : 'a'} ${device}`;
}
