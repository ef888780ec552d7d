// The settings page: rename, the assistant's language, sessions, log out, delete the account.
import { SettingsView } from '../view/settings.js';

export class SettingsController {
  constructor({ api, session, store, layout, dialog, logout, accountDeleted }) {
    this.api = api;
    this.session = session;
    this.store = store;
    this.layout = layout;
    this.dialog = dialog;
    this.logout = logout;
    this.accountDeleted = accountDeleted;
    this.view = new SettingsView(layout.mount('tpl-settings'));
    this.view.bind('rename', (name) => this.rename(name));
    this.view.bind('revoke', (id, current) => this.revoke(id, current));
    this.view.bind('revokeOthers', () => this.revokeOthers());
    this.view.bind('logout', () => this.logout());
    this.view.bind('deleteAccount', () => this.deleteAccount());
    this.view.bind('language', (code) => this.setLanguage(code));
    this.view.renderProfile(store.me);
    this.loadSessions();
    this.loadLanguage();
  }

  // The card stays hidden when the server runs without the assistant (404).
  async loadLanguage() {
    try {
      this.view.renderLanguage(await this.api.botLanguage());
    } catch (error) {
      if (error.status !== 404 && error.name !== 'SessionEnded') {
        this.layout.showToast(`Couldn't load the assistant's language: ${error.message}`);
      }
    }
  }

  async setLanguage(code) {
    this.view.renderLanguageState({});
    try {
      this.view.renderLanguage(await this.api.setBotLanguage(code));
      this.view.renderLanguageState({ saved: true });
    } catch (error) {
      this.view.renderLanguageState({ error: `Couldn't save the language: ${error.message}` });
    }
  }

  destroy() {}

  focus() {}

  async rename(raw) {
    const name = raw.trim();
    if (!name) {
      this.view.renderNameState({ error: 'Display name must not be empty.' });
      return;
    }
    this.view.renderNameState({ busy: true });
    try {
      const { user } = await this.api.rename(name);
      this.session.setUser(user);
      this.store.me = user;
      this.layout.setMe(user);
      this.view.renderProfile(user);
      this.view.renderNameState({ saved: true });
    } catch (error) {
      const message = error.fields && error.fields.name ? `Display name ${error.fields.name}.` : error.message;
      this.view.renderNameState({ error: message });
    }
  }

  async loadSessions() {
    try {
      const { sessions } = await this.api.sessions();
      sessions.sort((a, b) => (b.current - a.current) || (a.last_active < b.last_active ? 1 : -1));
      this.view.renderSessions(sessions);
    } catch (error) {
      if (error.name !== 'SessionEnded') this.view.renderSessions([], { error: `Couldn't load sessions: ${error.message}` });
    }
  }

  async revoke(id, current) {
    if (current) {
      this.logout();
      return;
    }
    try {
      await this.api.revokeSession(id);
      this.layout.showToast('That device has been logged out.', { kind: 'info' });
    } catch (error) {
      this.layout.showToast(`Couldn't revoke the session: ${error.message}`);
    }
    this.loadSessions();
  }

  async revokeOthers() {
    try {
      const { revoked } = await this.api.revokeOtherSessions();
      this.layout.showToast(revoked === 1 ? '1 other session has been logged out.'
        : `${revoked} other sessions have been logged out.`, { kind: 'info' });
    } catch (error) {
      this.layout.showToast(`Couldn't log out the other sessions: ${error.message}`);
    }
    this.loadSessions();
  }

  async deleteAccount() {
    const ok = await this.dialog.ask({
      title: 'Delete your account?',
      text: 'Your profile, sessions and conversations will be removed for good. Other people will see "Deleted account" in old chats.',
      confirm: 'Delete my account',
      requireText: 'DELETE',
    });
    if (!ok) return;
    this.accountDeleted('deleting');
    try {
      await this.api.deleteAccount();
      this.accountDeleted('deleted');
    } catch (error) {
      this.accountDeleted('failed');
      this.layout.showToast(`Couldn't delete your account: ${error.message}`);
    }
  }
}
