// The login and registration form.

const MODES = {
  login: {
    title: 'Log in', lead: 'Welcome back. Your chats are waiting.', submit: 'Log in',
    switchText: 'New to WhatsEase? ', switchLink: 'Create an account', switchHref: '/register',
    password: 'current-password',
  },
  register: {
    title: 'Create your account', lead: 'Chat in real time, with a helpful assistant built in.',
    submit: 'Create account', switchText: 'Already have an account? ', switchLink: 'Log in',
    switchHref: '/login', password: 'new-password',
  },
};

export class AuthView {
  constructor(root = document) {
    this.form = root.getElementById('auth-form');
    this.title = root.getElementById('auth-title');
    this.lead = root.getElementById('auth-lead');
    this.alert = root.getElementById('auth-alert');
    this.alertText = this.alert.querySelector('.alert-text');
    this.submit = root.getElementById('auth-submit');
    this.switchBox = root.getElementById('auth-switch');
    this.nameField = this.form.querySelector('[data-field="name"]');
    this.passwordHint = root.getElementById('auth-password-hint');
    this.forgot = root.getElementById('auth-forgot');
    this.inputs = {
      name: root.getElementById('auth-name'),
      email: root.getElementById('auth-email'),
      password: root.getElementById('auth-password'),
    };
    this.mode = 'login';
    this.pendingNotice = '';
    this.alert.querySelector('.alert-close').addEventListener('click', () => { this.alert.hidden = true; });
  }

  bind(event, handler) {
    if (event === 'submit') {
      this.form.addEventListener('submit', (e) => {
        e.preventDefault();
        handler(this.mode, {
          name: this.inputs.name.value,
          email: this.inputs.email.value,
          password: this.inputs.password.value,
        });
      });
    }
  }

  show(mode, { next } = {}) {
    const spec = MODES[mode];
    const changed = this.mode !== mode;
    this.mode = mode;
    document.title = `${spec.title} · WhatsEase`;
    this.title.textContent = spec.title;
    this.lead.textContent = spec.lead;
    this.submit.textContent = spec.submit;
    this.nameField.hidden = mode !== 'register';
    this.passwordHint.hidden = mode !== 'register';
    this.forgot.hidden = mode !== 'login';
    this.inputs.password.autocomplete = spec.password;
    const link = document.createElement('a');
    link.href = next && next !== '/' ? `${spec.switchHref}?next=${encodeURIComponent(next)}` : spec.switchHref;
    link.textContent = spec.switchLink;
    this.switchBox.replaceChildren(spec.switchText, link);
    if (this.pendingNotice) {
      this.showErrors({}, this.pendingNotice);
      this.alert.dataset.kind = 'info';
      this.pendingNotice = '';
    } else if (changed) {
      this.showErrors({});
    }
    this.setBusy(false);
    const first = mode === 'register' ? this.inputs.name : this.inputs.email;
    first.focus();
  }

  setBusy(busy) {
    this.submit.disabled = busy;
    this.form.setAttribute('aria-busy', String(busy));
    this.submit.textContent = busy ? 'Please wait…' : MODES[this.mode].submit;
  }

  // A message for the next time the form shows ("You've logged out.").
  notice(text) {
    this.pendingNotice = text;
  }

  // fields: {email: 'must be a valid email address', ...}; alert: text for the whole form.
  showErrors(fields, alert = '') {
    this.alert.dataset.kind = 'error';
    for (const [name, input] of Object.entries(this.inputs)) {
      const message = fields[name] || '';
      const box = document.getElementById(`auth-${name}-error`);
      box.textContent = message ? `${label(name)} ${message}` : '';
      input.setAttribute('aria-invalid', String(Boolean(message)));
    }
    this.alertText.textContent = alert;
    this.alert.hidden = !alert;
    const firstBad = Object.keys(this.inputs).find((name) => fields[name] && !this.inputs[name].closest('[hidden]'));
    if (firstBad) this.inputs[firstBad].focus();
  }

  reset() {
    this.form.reset();
    this.showErrors({});
  }
}

function label(field) {
  return { name: 'Name', email: 'Email', password: 'Password' }[field] || field;
}
