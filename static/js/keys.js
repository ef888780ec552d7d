// Key names the client reacts to (KeyboardEvent.key values).
export const KEY = Object.freeze({
  ENTER: 'Enter',
  ESCAPE: 'Escape',
  UP: 'ArrowUp',
  DOWN: 'ArrowDown',
  HOME: 'Home',
  END: 'End',
  SLASH: '/',
  K: 'k',
});

// True when the key press is meant for a text field rather than a shortcut.
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  return target.closest('input, textarea, select, [contenteditable="true"]') !== null;
}
