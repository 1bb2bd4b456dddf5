// DOM helpers: elements are built with textContent only (never HTML strings), so data
// from the API can never become markup or script.

import { fmtDateTime, trError } from './i18n.js';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let fieldSeq = 0;

// A labelled input; `name` is the API field the server names in its errors.
export function field(label, name, attrs = {}) {
  const id = `f${++fieldSeq}`;
  const input = h('input', { id, name, ...attrs });
  const err = h('span', { class: 'error', id: `${id}-err`, 'data-error-for': name, role: 'alert' });
  input.setAttribute('aria-describedby', err.id);
  return h('label', { for: id }, label, input, err);
}

export function selectField(label, name, options, value) {
  const id = `f${++fieldSeq}`;
  const sel = h('select', { id, name },
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
  const err = h('span', { class: 'error', 'data-error-for': name, role: 'alert' });
  return h('label', { for: id }, label, sel, err);
}

export function checkbox(label, name, checked) {
  const id = `f${++fieldSeq}`;
  return h('label', { class: 'check', for: id },
    h('input', { id, name, type: 'checkbox', checked: !!checked }), label);
}

// Shows an API error: next to the field it names, else in the form's alert box.
export function showError(form, err) {
  for (const e of form.querySelectorAll('[data-error-for]')) e.textContent = '';
  const box = form.querySelector('.form-alert');
  if (box) { box.textContent = ''; box.hidden = true; }
  if (!err) return;
  const target = err.field && form.querySelector(`[data-error-for="${CSS.escape(err.field)}"]`);
  const message = trError(err.message);
  if (target) {
    target.textContent = message;
    const input = form.querySelector(`[name="${CSS.escape(err.field)}"]`);
    if (input) input.focus();
  } else if (box) {
    box.textContent = message;
    box.hidden = false;
  }
}

export function formAlert() {
  return h('div', { class: 'alert form-alert', role: 'alert', hidden: true });
}

export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return out;
}

export function fmtTime(ms) {
  return fmtDateTime(ms);
}

export function fmtDuration(secs) {
  const s = Number(secs) || 0;
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

export function table(headers, rows) {
  return h('table', {},
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows));
}
