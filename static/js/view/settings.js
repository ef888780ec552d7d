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

  renderSessions(sessions, { error } = {}) {
    this.sessions.setAttribute('aria-busy', 'false');
    if (error) {
      this.sessions.replaceChildren(h('li', { class: 'session is-error', text: error }));
      return;
    }
    this.sessions.replaceChildren(...sessions.map((s) => h('li', { class: 'session' },
      h('span', { class: 'session-icon', 'aria-hidden': 'true' }, icon('device')),
      h('span', { class: 'session-main' },
        h('span', { class: 'session-device', text: describeAgent(s.user_agent) },
          s.current ? h('span', { class: 'tag', text: 'This device' }) : null),
        h('span', { class: 'session-meta' }, 'Active ',
          h('time', { datetime: s.last_used, title: fullTime(s.last_used), text: listTime(s.last_used) }),
          ' · signed in ', h('time', { datetime: s.created_at, title: fullTime(s.created_at), text: listTime(s.created_at) }))),
      h('button', {
        type: 'button', class: 'btn btn-small', dataset: { session: s.id, current: String(Boolean(s.current)) },
        'aria-label': s.current ? 'Log out of this device' : `Revoke ${describeAgent(s.user_agent)}, signed in ${listTime(s.created_at)}`,
        text: s.current ? 'Log out' : 'Revoke',
      }))));
  }
}

// "Chrome on Linux" from a user-agent string; good enough to recognise a device.
export function describeAgent(agent) {
  if (!agent) return 'Unknown device';
  const browser = /Edg\//.test(agent) ? 'Edge' : /Firefox\//.test(agent) ? 'Firefox'
    : /Chrom(e|ium)\//.test(agent) ? 'Chrome' : /Safari\//.test(agent) ? 'Safari'
      : /python|curl|websocket/i.test(agent) ? 'App' : 'Browser';
  const os = /Android/.test(agent) ? 'Android' : /iPhone|iPad/.test(agent) ? 'iOS'
    : /Windows/.test(agent) ? 'Windows' : /Mac OS X/.test(agent) ? 'macOS'
      : /Linux/.test(agent) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}
