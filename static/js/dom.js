// DOM helpers for the views: build elements with text (never HTML), icons, small utilities.
import { ICONS } from './icons.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

// h('li', {class: 'row', 'aria-label': name}, child, 'text') — strings become text nodes,
// so user data can never be parsed as markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'text') el.textContent = value;
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// An inline SVG icon from icons.js; decorative unless a label is given.
export function icon(name, label) {
  const spec = ICONS[name];
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', spec.viewBox || '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('focusable', 'false');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  for (const d of spec.paths) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    if (spec.stroke) {
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', 'currentColor');
      path.setAttribute('stroke-width', spec.stroke);
      path.setAttribute('stroke-linecap', 'round');
      path.setAttribute('stroke-linejoin', 'round');
    } else {
      path.setAttribute('fill', 'currentColor');
    }
    svg.append(path);
  }
  return svg;
}

// Fill every [data-icon] placeholder under root with its SVG (templates carry only names).
export function hydrateIcons(root) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    if (!el.querySelector('svg')) el.prepend(icon(el.dataset.icon));
  }
  return root;
}

export function cloneTemplate(id) {
  const template = document.getElementById(id);
  const fragment = template.content.cloneNode(true);
  return hydrateIcons(fragment.firstElementChild);
}

// An avatar: initials on a colour picked from the address, so it is stable.
export function fillAvatar(el, name, key, isBot = false) {
  el.replaceChildren();
  el.className = el.className.replace(/\bavatar-c\d\b/g, '').trim();
  if (isBot) {
    el.classList.add('avatar-bot');
    el.append(icon('bot'));
    return el;
  }
  el.classList.remove('avatar-bot');
  el.classList.add(`avatar-c${colourIndex(key || name)}`);
  el.textContent = initials(name || key);
  return el;
}

const AVATAR_COLOURS = 8;

export function colourIndex(key) {
  let hash = 0;
  for (const ch of String(key)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % AVATAR_COLOURS;
}

export function initials(name) {
  const words = String(name || '?').replace(/@.*/, '').split(/[\s._-]+/).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => [...w][0].toUpperCase());
  return letters.join('') || '?';
}

// Is the element scrolled (nearly) to the bottom?
export function atBottom(el, slackPx = 80) {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= slackPx;
}
