// GSM and SMS (administrators): the module's SIM, registration and signal, PIN/PUK entry
// (never shown back; a PIN the SIM rejected is named with the attempts left), the SMS
// inbox (read, delete) and sending an SMS under the box's rate limit.

import { get, post, put, del } from './api.js';
import { h, clear, field, checkbox, formAlert, table, showError, values } from './dom.js';
import { t, fmtDateTime } from './i18n.js';

const REFRESH_MS = 5000;

function kv(rows) {
  return h('table', { class: 'kv', id: 'gsm-status' }, h('tbody', {},
    rows.map(([k, v, id]) => h('tr', id ? { 'data-key': id } : {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
}

function statusRows(g) {
  const m = g.module;
  const rows = [];
  if (!m) {
    rows.push([t('Module'), t('no status (no module, or pbxd has not reported)'), 'module']);
  } else {
    const n = (v) => (v === null || v === undefined ? t('unknown') : String(v));
    rows.push([t('SIM'), m.sim, 'sim'], [t('Registration'), m.registration, 'registration'],
      [t('Operator'), m.operator || '–'], [t('Signal'), m.signal_dbm === null ? t('unknown') : `${m.signal_dbm} dBm`, 'signal'],
      [t('PIN attempts left'), n(m.pin_attempts_left), 'pin-left'], [t('PUK attempts left'), n(m.puk_attempts_left), 'puk-left'],
      [t('Last error'), m.last_error || '–', 'last-error'], [t('Reported'), fmtDateTime(m.updated_at * 1000)]);
  }
  let pin = g.pin_stored ? t('stored') : t('not stored');
  if (g.pin_rejected) pin = t('REJECTED by the SIM: enter the right PIN');
  rows.push([t('PIN'), h('span', { class: g.pin_rejected ? 'state-off' : '' }, pin), 'pin']);
  if (g.puk_stored) rows.push([t('PUK'), g.puk_rejected ? h('span', { class: 'state-off' }, t('REJECTED by the SIM')) : t('stored'), 'puk']);
  rows.push([t('Gateway use'), g.gateway_confirmed ? t('confirmed') : t('not confirmed: ordinary calls stay off GSM')],
    [t('SMS limits'), `${g.sms_per_minute}/${t('minute')}, ${g.sms_per_day}/${t('day')}`]);
  return rows;
}

function form(id, children, onSubmit) {
  const f = h('form', { class: 'grid', id, novalidate: true }, ...children, formAlert());
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = f.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      showError(f, null);
      await onSubmit(values(f));
      f.reset();
    } catch (e) {
      showError(f, e);
    } finally {
      button.disabled = false;
    }
  });
  return f;
}

export async function gsm(main) {
  const flash = h('p', { class: 'notice', role: 'status', id: 'gsm-flash', hidden: true });
  const say = (text, bad) => { flash.textContent = text; flash.className = bad ? 'alert' : 'notice'; flash.hidden = !text; };
  const status = h('div', { id: 'gsm-module' });
  const inbox = h('div', { id: 'sms-list' });

  const loadStatus = async () => { clear(status).append(kv(statusRows(await get('/api/v1/gsm')))); };
  const loadInbox = async () => {
    const list = await get('/api/v1/sms?limit=100');
    const rows = list.map((s) => h('tr', { 'data-sms': s.id, class: s.direction === 'in' && !s.read ? 'unread' : '' },
      h('td', {}, fmtDateTime(s.at * 1000)),
      h('td', {}, s.direction === 'in' ? t('from') : t('to')),
      h('td', {}, s.peer),
      h('td', { class: 'sms-text' }, s.text),
      h('td', {}, s.direction === 'in' ? (s.read ? t('read') : t('unread')) : t(s.status), s.error ? h('div', { class: 'error' }, s.error) : null),
      h('td', { class: 'actions' },
        s.direction === 'in' && !s.read ? h('button', { type: 'button', class: 'secondary', onclick: async () => {
          try { await post(`/api/v1/sms/${s.id}/read`); await loadInbox(); } catch (e) { say(e.message, true); }
        } }, t('Mark read')) : null,
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirm(t('Delete this SMS?'))) return;
          try { await del(`/api/v1/sms/${s.id}`); say(t('SMS deleted.')); await loadInbox(); } catch (e) { say(e.message, true); }
        } }, t('Delete')))));
    clear(inbox).append(rows.length
      ? table(['Time', '', 'Number', 'Text', 'State', 'Actions'].map((x) => (x ? t(x) : '')), rows)
      : h('p', { class: 'muted', id: 'sms-none' }, t('No SMS.')));
  };

  const pinForm = form('pin-form', [
    field(t('SIM PIN (4 to 8 digits)'), 'pin', { type: 'password', inputmode: 'numeric', autocomplete: 'off' }),
    checkbox(t('Allow the SIM\'s last PIN attempt'), 'last_attempt', false),
    h('button', { type: 'submit' }, t('Store PIN'))], async (v) => {
    await put('/api/v1/gsm/pin', { pin: v.pin, last_attempt: v.last_attempt });
    say(t('PIN stored; pbxd uses it once when the SIM asks for it.'));
    await loadStatus();
  });
  const pukForm = form('puk-form', [
    field(t('PUK (8 digits)'), 'puk', { type: 'password', inputmode: 'numeric', autocomplete: 'off' }),
    field(t('New PIN'), 'new_pin', { type: 'password', inputmode: 'numeric', autocomplete: 'off' }),
    h('button', { type: 'submit' }, t('Store PUK'))], async (v) => {
    await put('/api/v1/gsm/puk', { puk: v.puk, new_pin: v.new_pin });
    say(t('PUK stored; pbxd uses it once when the SIM asks for it.'));
    await loadStatus();
  });
  const count = h('span', { class: 'muted', id: 'sms-count' });
  const sendForm = form('sms-form', [
    field(t('Number'), 'number', { inputmode: 'tel', autocomplete: 'off' }),
    h('label', { for: 'sms-text' }, t('Text'), h('textarea', { id: 'sms-text', name: 'text', rows: 3, maxlength: 2000 }),
      h('span', { class: 'error', 'data-error-for': 'text', role: 'alert' }), count),
    h('button', { type: 'submit' }, t('Send SMS'))], async (v) => {
    const r = await post('/api/v1/sms', { number: v.number.trim(), text: v.text });
    say(`${t('SMS queued')} (${r.parts} ${t(r.parts === 1 ? 'part' : 'parts')}).`);
    count.textContent = '';
    await loadInbox();
  });
  sendForm.elements.text.addEventListener('input', (ev) => { count.textContent = `${ev.target.value.length} ${t('characters')}`; });

  main.append(flash, h('div', { class: 'card' }, h('h2', {}, t('Module')), status),
    h('div', { class: 'card' }, h('h2', {}, t('SIM PIN')), h('p', { class: 'muted' }, t('The PIN is stored encrypted and never shown.')), pinForm),
    h('div', { class: 'card' }, h('h2', {}, t('PUK (SIM blocked)')), pukForm),
    h('div', { class: 'card' }, h('h2', {}, t('Send an SMS')), sendForm),
    h('h2', {}, t('SMS')), inbox);
  await loadStatus();
  await loadInbox();
  const timer = setInterval(() => { loadStatus().catch(() => {}); }, REFRESH_MS);
  return () => clearInterval(timer);
}
