// Formatting of times, counts and previews for display (pure functions, no DOM).

const DAY_MS = 24 * 60 * 60 * 1000;
// How far back a weekday name ("Monday") is clearer than a date.
const WEEKDAY_WINDOW_DAYS = 6;

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const shortDateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const longDateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

export function toDate(value) {
  return value instanceof Date ? value : new Date(value);
}

function startOfDay(date) {
  const d = new Date(date);
  d.setHours(0, 0, 0, 0);
  return d;
}

// Whole calendar days between date and now (0 = today, 1 = yesterday).
export function daysAgo(value, now = new Date()) {
  return Math.round((startOfDay(now) - startOfDay(toDate(value))) / DAY_MS);
}

export function dayKey(value) {
  const d = toDate(value);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function clock(value) {
  return clockFormat.format(toDate(value));
}

export function fullTime(value) {
  return fullFormat.format(toDate(value));
}

// The separator between days in a conversation.
export function dayLabel(value, now = new Date()) {
  const days = daysAgo(value, now);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days <= WEEKDAY_WINDOW_DAYS) return weekdayFormat.format(toDate(value));
  return longDateFormat.format(toDate(value));
}

// The time in the chat list: a clock today, then Yesterday, a weekday, a date.
export function listTime(value, now = new Date()) {
  if (!value) return '';
  const days = daysAgo(value, now);
  if (days <= 0) return clock(value);
  if (days === 1) return 'Yesterday';
  if (days <= WEEKDAY_WINDOW_DAYS) return weekdayFormat.format(toDate(value));
  return shortDateFormat.format(toDate(value));
}

export function lastSeen(value, now = new Date()) {
  if (!value) return '';
  const days = daysAgo(value, now);
  if (days === 0) return `last seen today at ${clock(value)}`;
  if (days === 1) return `last seen yesterday at ${clock(value)}`;
  return `last seen ${shortDateFormat.format(toDate(value))}`;
}

// Characters as the server counts them (code points, after trimming).
export function charCount(text) {
  let n = 0;
  for (const _ of text.trim()) n += 1;
  return n;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}
