// Analog ports (administrators): each FXS port's settings and its live state (hook,
// line feed, call, fault) as pbxd reports it. Saving goes through pbxctl port set's
// checks; country, caller ID and call waiting apply within seconds, the number at the
// next start of pbxd.

import { get, put } from './api.js';
import { h, clear, field, selectField, checkbox, formAlert, table, showError, values } from './dom.js';
import { t, fmtDateTime } from './i18n.js';

const REFRESH_MS = 3000;

function liveText(p) {
  const l = p.live;
  if (!l) return [t('no status (pbxd has not reported this port)'), 'muted'];
  if (l.faulty) return [`${t('FAULTY')}: ${l.faulty}`, 'state-off'];
  return [`${t(l.hook === 'off' ? 'off hook' : 'on hook')} · ${t(l.call)}`, l.hook === 'off' ? 'state-on' : ''];
}

// The number in use; a stored change shows beside it until pbxd restarts.
function numberText(p) {
  const inUse = p.live && p.live.number;
  if (inUse && p.number && p.number !== inUse) return `${inUse} (${t('after restart:')} ${p.number})`;
  return inUse || p.number || '–';
}

function portForm(p, choices, onSaved) {
  const countries = [['', `${t('default')} (DE)`], ...choices.countries.map((c) => [c, c])];
  const cids = [['', t('the country\'s')], ...choices.cid_modes.map((m) => [m, t(`cid-${m}`)])];
  const form = h('form', { class: 'grid', id: 'port-form', novalidate: true },
    field(t('Extension number (empty: default)'), 'number', { value: p.number || '', inputmode: 'numeric', autocomplete: 'off' }),
    field(t('Name (caller ID name)'), 'name', { value: p.name || '', autocomplete: 'off' }),
    selectField(t('Country (tones and ringing)'), 'country', countries, p.country || ''),
    selectField(t('Caller ID'), 'cid', cids, p.cid || ''),
    checkbox(t('Call waiting'), 'call_waiting', p.call_waiting),
    h('p', { class: 'muted' }, t('port-number-note')),
    formAlert(),
    h('button', { type: 'submit' }, t('Save port')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = values(form);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      showError(form, null);
      const saved = await put(`/api/v1/ports/${p.port}`, {
        number: f.number.trim(), name: f.name.trim(), country: f.country, cid: f.cid, call_waiting: f.call_waiting,
      });
      await onSaved(saved);
    } catch (e) {
      showError(form, e);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export async function ports(main) {
  const flash = h('p', { class: 'notice', role: 'status', id: 'port-flash', hidden: true });
  const list = h('div', { id: 'port-list' });
  const edit = h('div', { class: 'card', id: 'port-edit', hidden: true });
  const say = (text) => { flash.textContent = text; flash.hidden = !text; };
  let choices = { countries: [], cid_modes: [] };

  const refresh = async () => {
    const v = await get('/api/v1/ports');
    choices = v;
    const rows = v.ports.map((p) => {
      const [text, cls] = liveText(p);
      return h('tr', { 'data-port': p.port },
        h('td', {}, String(p.port)),
        h('td', {}, numberText(p)),
        h('td', {}, p.name || ''),
        h('td', {}, p.effective_country),
        h('td', {}, t(`cid-${p.effective_cid}`)),
        h('td', {}, p.call_waiting ? t('on') : t('off')),
        h('td', { class: 'port-state' }, h('span', { class: cls }, text),
          p.live ? h('div', { class: 'muted' }, `${t('line feed')}: ${t(p.live.linefeed)} · ${fmtDateTime(p.live.updated_at * 1000)}`) : null),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => showEdit(p) }, t('Edit'))));
    });
    clear(list).append(rows.length
      ? table(['Port', 'Number', 'Name', 'Country', 'Caller ID', 'Call waiting', 'State', 'Actions'].map(t), rows)
      : h('p', { class: 'muted', id: 'no-ports' }, t('No analog ports: pbxd runs without port hardware.')));
  };
  const showEdit = (p) => {
    edit.hidden = false;
    clear(edit).append(h('h2', {}, `${t('Change port')} ${p.port}`), portForm(p, choices, async (saved) => {
      say(`${t('Port saved:')} ${saved.port}`);
      edit.hidden = true;
      await refresh();
    }), h('button', { type: 'button', class: 'secondary', onclick: () => { edit.hidden = true; } }, t('Cancel')));
    edit.scrollIntoView();
  };

  main.append(flash, list, edit);
  await refresh();
  const timer = setInterval(() => { refresh().catch(() => {}); }, REFRESH_MS);
  return () => clearInterval(timer);
}
