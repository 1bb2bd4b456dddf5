// Trunks and numbers (administrators): provider accounts with their live registration
// state, the account's numbers (DID → destination, caller ID), and the site's emergency
// caller ID and toll-fraud limits. The password field is write-only: the API never
// sends it back, so an empty field on change means "keep the stored one".

import { get, post, put, del } from './api.js';
import { h, clear, field, selectField, checkbox, formAlert, table, showError, values } from './dom.js';
import { t, fmtDateTime } from './i18n.js';

const REFRESH_MS = 5000;

function stateText(tr) {
  if (!tr.enabled) return [t('disabled'), 'state-off'];
  const s = tr.status;
  if (!s) return [t('no status yet'), 'muted'];
  let text = t(s.state);
  if (s.registered_until) text += ` ${t('until')} ${fmtDateTime(s.registered_until * 1000)}`;
  if (s.reason) text += `: ${s.reason}`;
  return [text, s.state === 'registered' ? 'state-on' : 'state-off'];
}

function trunkForm(tr, onSaved) {
  const editing = !!tr;
  const v = tr || { enabled: true, transport: 'udp', srtp: 'off', register_secs: 600, max_calls: 2 };
  const form = h('form', { class: 'grid', id: 'trunk-form', novalidate: true },
    field(t('Name (a-z, 0-9, - and _)'), 'name', { value: v.name || '', required: true, readonly: editing, autocomplete: 'off' }),
    field(t('Registrar (host or host:port)'), 'registrar', { value: v.registrar || '', required: true }),
    field(t('SIP domain (empty: the registrar)'), 'domain', { value: v.domain || '' }),
    field(t('Outbound proxy (optional)'), 'proxy', { value: v.proxy || '' }),
    field(t('SIP-ID (user)'), 'user', { value: v.user || '', required: true, autocomplete: 'off' }),
    field(t('Authentication user (empty: the SIP-ID)'), 'auth_user', { value: v.auth_user || '', autocomplete: 'off' }),
    field(editing ? t('New password (empty: keep)') : t('Password'), 'password', { type: 'password', autocomplete: 'new-password' }),
    selectField(t('Transport'), 'transport', [['udp', 'UDP'], ['tcp', 'TCP'], ['tls', 'TLS']], v.transport),
    selectField(t('SRTP'), 'srtp', [['off', t('off')], ['optional', t('optional')], ['mandatory', t('mandatory')]], v.srtp),
    field(t('Registration interval (s)'), 'register_secs', { type: 'number', min: 60, max: 86400, value: v.register_secs }),
    field(t('Most simultaneous calls'), 'max_calls', { type: 'number', min: 1, max: 1000, value: v.max_calls }),
    checkbox(t('Enabled'), 'enabled', v.enabled),
    formAlert(),
    h('button', { type: 'submit' }, editing ? t('Save trunk') : t('Add trunk')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = values(form);
    const body = {
      registrar: f.registrar.trim(), domain: f.domain.trim() || null, proxy: f.proxy.trim() || null,
      user: f.user.trim(), auth_user: f.auth_user.trim() || null, transport: f.transport, srtp: f.srtp,
      register_secs: Number(f.register_secs), max_calls: Number(f.max_calls), enabled: f.enabled,
    };
    if (f.password) body.password = f.password;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      showError(form, null);
      if (editing) await put(`/api/v1/trunks/${encodeURIComponent(tr.name)}`, body);
      else await post('/api/v1/trunks', { name: f.name.trim(), ...body });
      form.elements.password.value = '';
      await onSaved(editing ? tr.name : f.name.trim());
    } catch (e) {
      showError(form, e);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export async function trunks(main) {
  const flash = h('p', { class: 'notice', role: 'status', id: 'trunk-flash', hidden: true });
  const list = h('div', { id: 'trunk-list' });
  const edit = h('div', { class: 'card', id: 'trunk-edit' });
  const numbers = h('div', { id: 'number-list' });
  const say = (text, bad) => { flash.textContent = text; flash.className = bad ? 'alert' : 'notice'; flash.hidden = !text; };

  let known = [];
  const refresh = async () => {
    known = await get('/api/v1/trunks');
    const rows = known.map((tr) => {
      const [text, cls] = stateText(tr);
      return h('tr', { 'data-trunk': tr.name },
        h('td', {}, tr.name),
        h('td', {}, tr.registrar),
        h('td', {}, tr.user),
        h('td', {}, tr.transport.toUpperCase()),
        h('td', {}, String(tr.max_calls)),
        h('td', { class: 'trunk-state' }, h('span', { class: cls }, text),
          tr.status && tr.status.public_addr ? h('div', { class: 'muted' }, `${t('public address')} ${tr.status.public_addr}`) : null),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => showEdit(tr) }, t('Edit')),
          h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!confirm(t('Remove this trunk?'))) return;
            try { await del(`/api/v1/trunks/${encodeURIComponent(tr.name)}`); say(`${t('Trunk removed:')} ${tr.name}`); showAdd(); await refresh(); } catch (e) { say(e.message, true); }
          } }, t('Remove'))));
    });
    clear(list).append(rows.length
      ? table(['Name', 'Registrar', 'SIP-ID', 'Transport', 'Calls', 'State', 'Actions'].map(t), rows)
      : h('p', { class: 'muted', id: 'no-trunks' }, t('No trunk yet: add the account your provider gave you.')));
    numberTrunks();
  };
  const saved = async (name) => { say(`${t('Trunk saved:')} ${name}`); showAdd(); await refresh(); };
  const showAdd = () => clear(edit).append(h('h2', {}, t('Add a trunk')), trunkForm(null, saved));
  const showEdit = (tr) => {
    clear(edit).append(h('h2', {}, `${t('Change trunk')} ${tr.name}`),
      h('p', { class: 'muted' }, t('The password is stored encrypted and never shown.')), trunkForm(tr, saved),
      h('button', { type: 'button', class: 'secondary', onclick: showAdd }, t('Cancel')));
    edit.scrollIntoView();
  };

  // ---- numbers
  const trunkSelect = h('select', { name: 'trunk', id: 'number-trunk' });
  const numberTrunks = () => {
    const cur = trunkSelect.value;
    clear(trunkSelect).append(...known.map((tr) => h('option', { value: tr.name, selected: tr.name === cur }, tr.name)));
  };
  const loadNumbers = async () => {
    const rows = (await get('/api/v1/trunk-numbers')).map((n) => h('tr', { 'data-number': n.number },
      h('td', {}, n.number), h('td', {}, n.trunk), h('td', {}, n.destination || t('caller ID only')),
      h('td', {}, n.callers.map((c) => (c === '*' ? t('all extensions') : c)).join(', ')),
      h('td', {}, n.is_default ? t('yes') : ''),
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'danger', onclick: async () => {
        try { await del(`/api/v1/trunk-numbers/${encodeURIComponent(n.number)}`); await loadNumbers(); } catch (e) { say(e.message, true); }
      } }, t('Remove')))));
    clear(numbers).append(rows.length
      ? table(['Number', 'Trunk', 'Rings', 'Caller ID for', 'Default'].map(t).concat([t('Actions')]), rows)
      : h('p', { class: 'muted' }, t('No numbers yet.')));
  };
  const numberForm = h('form', { class: 'grid', id: 'number-form', novalidate: true },
    field(t('Number (E.164, e.g. +4921112345)'), 'number', { required: true, inputmode: 'tel' }),
    h('label', { for: 'number-trunk' }, t('Trunk'), trunkSelect, h('span', { class: 'error', 'data-error-for': 'trunk', role: 'alert' })),
    field(t('Rings (extension, ring group or port; empty: caller ID only)'), 'destination', { inputmode: 'numeric' }),
    field(t('Caller ID for (extensions, comma-separated; * for all)'), 'callers'),
    checkbox(t('Default caller ID of the trunk'), 'is_default', false),
    formAlert(), h('button', { type: 'submit' }, t('Save number')));
  numberForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = values(numberForm);
    try {
      showError(numberForm, null);
      await post('/api/v1/trunk-numbers', {
        trunk: v.trunk, number: v.number.trim(), destination: v.destination.trim() || null,
        callers: v.callers.split(',').map((c) => c.trim()).filter((c) => c), is_default: v.is_default,
      });
      numberForm.reset();
      await loadNumbers();
    } catch (e) {
      showError(numberForm, e);
    }
  });

  // ---- site-wide settings
  const s = await get('/api/v1/trunk-settings');
  const settingsForm = h('form', { class: 'grid', id: 'trunk-settings-form', novalidate: true },
    field(t('Emergency caller ID (E.164, one of the numbers)'), 'emergency.caller_id', { value: s.emergency.caller_id || '', inputmode: 'tel' }),
    field(t('Emergency address as registered with the provider'), 'emergency.address', { value: s.emergency.address || '' }),
    checkbox(t('Toll-fraud protection'), 'toll_fraud.enabled', s.toll_fraud.enabled),
    field(t('External calls per minute before an extension is locked'), 'toll_fraud.calls_per_minute', { type: 'number', min: 1, max: 1000, value: s.toll_fraud.calls_per_minute }),
    field(t('Simultaneous external calls per user'), 'toll_fraud.user_concurrent', { type: 'number', min: 1, max: 100, value: s.toll_fraud.user_concurrent }),
    formAlert(), h('button', { type: 'submit' }, t('Save settings')));
  settingsForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = values(settingsForm);
    try {
      showError(settingsForm, null);
      await put('/api/v1/trunk-settings', {
        emergency: { caller_id: v['emergency.caller_id'].trim() || null, address: v['emergency.address'].trim() || null },
        toll_fraud: { enabled: v['toll_fraud.enabled'], calls_per_minute: Number(v['toll_fraud.calls_per_minute']),
          user_concurrent: Number(v['toll_fraud.user_concurrent']) },
      });
      say(t('Emergency and toll-fraud settings saved.'));
    } catch (e) {
      showError(settingsForm, e);
    }
  });

  main.append(flash, list, edit,
    h('h2', {}, t('Numbers')), numbers, h('div', { class: 'card' }, numberForm),
    h('h2', {}, t('Emergency calls and limits')), h('div', { class: 'card' }, settingsForm));
  showAdd();
  await refresh();
  await loadNumbers();
  // Live state: the registration client writes it; refresh while the page is open.
  const timer = setInterval(() => { refresh().catch(() => {}); }, REFRESH_MS);
  return () => clearInterval(timer);
}
