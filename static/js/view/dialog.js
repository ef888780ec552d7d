// A confirmation dialog on the native <dialog> (focus stays inside; Escape cancels).

export class ConfirmDialog {
  constructor(root = document) {
    this.dialog = root.getElementById('confirm');
    this.title = root.getElementById('confirm-title');
    this.text = root.getElementById('confirm-text');
    this.field = root.getElementById('confirm-field');
    this.input = root.getElementById('confirm-input');
    this.inputLabel = this.field.querySelector('label');
    this.ok = root.getElementById('confirm-ok');
    this.input.addEventListener('input', () => this.check());
    // Enter in the text box means "confirm" (the form's first button is Cancel).
    this.input.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      e.preventDefault();
      if (!this.ok.disabled) this.dialog.close('ok');
    });
  }

  // Resolves true when confirmed. requireText: the user must type it to enable the button.
  ask({ title, text, confirm, requireText = '', danger = true }) {
    const opener = document.activeElement;
    this.title.textContent = title;
    this.text.textContent = text;
    this.ok.textContent = confirm;
    this.ok.classList.toggle('btn-danger', danger);
    this.ok.classList.toggle('btn-primary', !danger);
    this.required = requireText;
    this.field.hidden = !requireText;
    this.input.value = '';
    this.inputLabel.textContent = requireText ? `Type ${requireText} to confirm` : '';
    this.check();
    this.dialog.returnValue = 'cancel';
    this.dialog.showModal();
    (requireText ? this.input : this.dialog.querySelector('button[value="cancel"]')).focus();
    return new Promise((resolve) => {
      this.dialog.addEventListener('close', () => {
        if (opener && opener.isConnected) opener.focus();
        resolve(this.dialog.returnValue === 'ok');
      }, { once: true });
    });
  }

  check() {
    this.ok.disabled = Boolean(this.required) && this.input.value.trim().toLowerCase() !== this.required.toLowerCase();
  }
}
