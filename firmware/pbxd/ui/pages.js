// The pages of the shell. Each `render(main, ctx)` fills `main` and may return a
// clean-up function (called when the user leaves the page).

import { get, post, put, del } from './api.js';
import { h, clear, field, selectField, checkbox, formAlert, table, fmtTime, fmtDuration, showError } from './dom.js';
import { dashboard } from './dashboard.js';
import { backup, system, diagnostics } from './admin.js';
import { trunks } from './trunks.js';
import { ports } from './ports.js';
import { certificate } from './certificate.js';
import { gsm } from './gsm.js';
import { firmware } from './firmware.js';
import { phonebook, noteCell } from './phonebook.js';
import { dialButton, dialBox } from './dial.js';
import { t, tf, setLanguage, language } from './i18n.js';

const CLASSES = [['internal', 'Internal only'], ['local', 'Local'], ['national', 'National'], ['international', 'International']];
const DISPOSITIONS = [['', 'Any result'], ['answered', 'Answered'], ['busy', 'Busy'], ['no_answer', 'No answer'],
  ['cancelled', 'Cancelled'], ['failed', 'Failed'], ['blocked', 'Blocked']];

function notice(main, text) {
  const old = main.querySelector('.notice.flash');
  if (old) old.remove();
  main.querySelector('h1').after(h('p', { class: 'notice flash', role: 'status' }, text));
}

function action(label, fn, cls = 'secondary') {
  return h('button', { type: 'button', class: cls, onclick: fn }, label);
}

// Runs a row action; an error shows in the page's alert line.
async function act(main, fn, done) {
  try {
    await fn();
    if (done) notice(main, done);
  } catch (e) {
    notice(main, '');
    main.querySelector('.notice.flash').className = 'alert flash';
    main.querySelector('.alert.flash').textContent = e.message;
  }
}

// ---- extensions ---------------------------------------------------------------------

async function extensions(main, ctx) {
  const list = h('div', { id: 'extension-list' });
  const edit = h('div', { id: 'extension-edit' });
  const refresh = async () => {
    const rows = (await get('/api/v1/extensions')).map((e) => h('tr', { 'data-number': e.number },
      h('td', {}, e.number),
      h('td', {}, e.name || ''),
      h('td', {}, e.enabled ? h('span', { class: 'state-on' }, t('active')) : h('span', { class: 'state-off' }, t('blocked'))),
      h('td', {}, e.registrations > 0 ? tf('{n} registered', { n: e.registrations }) : t('not registered'),
        e.password_valid ? '' : h('span', { class: 'error' }, ` (${t('password must be set again')})`)),
      h('td', { class: 'actions' },
        action(t('Edit'), () => showEdit(e.number)),
        e.enabled
          ? action(t('Block'), () => act(main, async () => { await post(`/api/v1/extensions/${e.number}/disable`); await refresh(); }, tf(t('Extension {n} blocked.'), { n: e.number })))
          : action(t('Unblock'), () => act(main, async () => { await post(`/api/v1/extensions/${e.number}/enable`); await refresh(); }, tf(t('Extension {n} unblocked.'), { n: e.number }))),
        action(t('Remove'), () => {
          if (!confirm(tf(t('Remove extension {n}?'), { n: e.number }))) return;
          act(main, async () => { await del(`/api/v1/extensions/${e.number}`); clear(edit); await refresh(); }, tf(t('Extension {n} removed.'), { n: e.number }));
        }, 'danger'))));
    clear(list).append(rows.length ? table([t('Number'), t('Name'), t('State'), t('Phone'), t('Actions')], rows)
      : h('p', { class: 'muted' }, t('No extensions yet.')));
  };

  const showEdit = async (number) => {
    const x = await get(`/api/v1/extensions/${number}`);
    const s = x.settings;
    const nameForm = ctx.submitting(h('form', { class: 'grid', id: 'rename-form', novalidate: true },
      field(t('Name'), 'name', { value: x.name || '' }), formAlert(),
      h('button', { type: 'submit' }, t('Save name'))), async (v) => {
      await put(`/api/v1/extensions/${number}`, { name: v.name });
      await refresh();
      notice(main, tf(t('Extension {n} saved.'), { n: number }));
    });
    const pwForm = ctx.submitting(h('form', { class: 'grid', id: 'ext-password-form', novalidate: true },
      field(t('New SIP password (at least 8 characters)'), 'password', { type: 'password', autocomplete: 'new-password' }), formAlert(),
      h('button', { type: 'submit' }, t('Set password'))), async (v) => {
      await put(`/api/v1/extensions/${number}/password`, { password: v.password });
      await refresh();
      notice(main, tf(t('Password of extension {n} changed.'), { n: number }));
    });
    const setForm = ctx.submitting(h('form', { class: 'grid', id: 'ext-settings-form', novalidate: true },
      selectField(t('Outbound calls'), 'outbound_class', CLASSES.map(([v, l]) => [v, t(l)]), s.outbound_class),
      checkbox(t('Hide caller ID (CLIR)'), 'clir', s.clir),
      checkbox(t('Do not disturb'), 'dnd', s.dnd),
      field(t('Forward always to'), 'forward_always', { value: s.forward_always || '' }),
      field(t('Forward when busy to'), 'forward_busy', { value: s.forward_busy || '' }),
      field(t('Forward on no answer to'), 'forward_noanswer', { value: s.forward_noanswer || '' }),
      field(t('No-answer time (s)'), 'forward_noanswer_secs', { type: 'number', min: 5, max: 120, value: s.forward_noanswer_secs }),
      field(t('Pickup group (1-99, empty for none)'), 'pickup_group', { type: 'number', min: 1, max: 99, value: s.pickup_group ?? '' }),
      formAlert(), h('button', { type: 'submit' }, t('Save call settings'))), async (v) => {
      await put(`/api/v1/extensions/${number}/settings`, {
        outbound_class: v.outbound_class, clir: v.clir, dnd: v.dnd,
        forward_always: v.forward_always || null, forward_busy: v.forward_busy || null,
        forward_noanswer: v.forward_noanswer || null,
        forward_noanswer_secs: Number(v.forward_noanswer_secs),
        pickup_group: v.pickup_group === '' ? null : Number(v.pickup_group),
      });
      notice(main, tf(t('Call settings of {n} saved.'), { n: number }));
    });
    clear(edit).append(h('div', { class: 'card' },
      h('h2', {}, tf(t('Extension {n}'), { n: number })),
      x.ring_groups.length ? h('p', { class: 'muted' }, tf(t('Member of ring groups {list}'), { list: x.ring_groups.join(', ') })) : null,
      nameForm, h('h2', {}, t('Password')), pwForm, h('h2', {}, t('Call settings')), setForm));
    edit.querySelector('input').focus();
  };

  const addForm = ctx.submitting(h('form', { class: 'grid', id: 'add-extension-form', novalidate: true },
    field(t('Number (2-6 digits)'), 'number', { inputmode: 'numeric', required: true }),
    field(t('Name'), 'name'),
    field(t('SIP password (at least 8 characters)'), 'password', { type: 'password', autocomplete: 'new-password', required: true }),
    formAlert(), h('button', { type: 'submit' }, t('Add extension'))), async (v) => {
    await post('/api/v1/extensions', { number: v.number.trim(), name: v.name, password: v.password });
    addForm.reset();
    await refresh();
    notice(main, tf(t('Extension {n} added.'), { n: v.number }));
  });
  main.append(h('div', { class: 'card' }, h('h2', {}, t('Add an extension')), addForm), list, edit);
  await refresh();
}

// ---- ring groups --------------------------------------------------------------------

async function ringGroups(main, ctx) {
  const list = h('div', { id: 'ring-group-list' });
  const formBox = h('div', {});
  const refresh = async () => {
    const rows = (await get('/api/v1/ring-groups')).map((g) => h('tr', {},
      h('td', {}, g.number), h('td', {}, g.name || ''), h('td', {}, g.strategy),
      h('td', {}, `${g.ring_secs} s`), h('td', {}, g.members.join(', ')), h('td', {}, g.noanswer_target || '—'),
      h('td', { class: 'actions' },
        action(t('Edit'), () => showForm(g)),
        action(t('Remove'), () => {
          if (!confirm(tf(t('Remove ring group {n}?'), { n: g.number }))) return;
          act(main, async () => { await del(`/api/v1/ring-groups/${g.number}`); await refresh(); }, tf(t('Ring group {n} removed.'), { n: g.number }));
        }, 'danger'))));
    clear(list).append(rows.length ? table([t('Number'), t('Name'), t('Strategy'), t('Ring time'), t('Members'), t('No answer'), t('Actions')], rows)
      : h('p', { class: 'muted' }, t('No ring groups yet.')));
  };
  const showForm = (g) => {
    const editing = !!g;
    g = g || { number: '', name: '', strategy: 'simultaneous', ring_secs: 20, members: [], noanswer_target: '' };
    const form = ctx.submitting(h('form', { class: 'grid', id: 'ring-group-form', novalidate: true },
      field(t('Number'), 'number', { value: g.number, readonly: editing, inputmode: 'numeric' }),
      field(t('Name'), 'name', { value: g.name || '' }),
      selectField(t('Strategy'), 'strategy', [['simultaneous', t('All at once')], ['ordered', t('One after another')]], g.strategy),
      field(t('Ring time (s)'), 'ring_secs', { type: 'number', min: 5, max: 300, value: g.ring_secs }),
      field(t('Members (e.g. 101, 102)'), 'members', { value: g.members.join(', ') }),
      field(t('On no answer, go to'), 'noanswer_target', { value: g.noanswer_target || '' }),
      formAlert(), h('button', { type: 'submit' }, editing ? t('Save ring group') : t('Add ring group'))), async (v) => {
      const body = { name: v.name, strategy: v.strategy, ring_secs: Number(v.ring_secs),
        members: v.members.split(/[\s,;]+/).filter((m) => m), noanswer_target: v.noanswer_target || null };
      if (editing) await put(`/api/v1/ring-groups/${g.number}`, body);
      else await post('/api/v1/ring-groups', { number: v.number.trim(), ...body });
      await refresh();
      showForm(null);
      notice(main, editing ? tf(t('Ring group {n} saved.'), { n: g.number }) : tf(t('Ring group {n} added.'), { n: v.number }));
    });
    clear(formBox).append(h('div', { class: 'card' }, h('h2', {}, editing ? tf(t('Ring group {n}'), { n: g.number }) : t('Add a ring group')), form));
  };
  main.append(formBox, list);
  showForm(null);
  await refresh();
}

// ---- call log -----------------------------------------------------------------------

function dayStart(dateText, plusDays) {
  if (!dateText) return '';
  const [y, m, d] = dateText.split('-').map(Number);
  return String(new Date(y, m - 1, d + plusDays).getTime());
}

async function calls(main, ctx) {
  const PAGE = 50;
  let offset = 0;
  const filters = ctx.submitting(h('form', { class: 'grid', id: 'cdr-filter', novalidate: true },
    field(t('From (date)'), 'since', { type: 'date' }),
    field(t('To (date, inclusive)'), 'until', { type: 'date' }),
    field(t('Number'), 'number', { inputmode: 'tel' }),
    selectField(t('Result'), 'disposition', DISPOSITIONS.map(([v, l]) => [v, t(l)]), ''),
    formAlert(), h('button', { type: 'submit' }, t('Show'))), async () => { offset = 0; await load(); });
  const csv = h('a', { id: 'cdr-csv', href: '/api/v1/cdr.csv', download: 'calls.csv' }, t('Download as CSV'));
  const out = h('div', { id: 'cdr-table' });
  const pager = h('div', { class: 'pager' });
  const query = () => {
    const v = Object.fromEntries(new FormData(filters));
    const q = new URLSearchParams();
    const since = dayStart(v.since, 0), until = dayStart(v.until, 1);
    if (since) q.set('since_ms', since);
    if (until) q.set('until_ms', until);
    if (v.number.trim()) q.set('number', v.number.trim());
    if (v.disposition) q.set('disposition', v.disposition);
    return q;
  };
  const canDial = Boolean(ctx.session.extension);
  const load = async () => {
    const q = query();
    csv.setAttribute('href', `/api/v1/cdr.csv?${q}`);
    q.set('limit', PAGE);
    q.set('offset', offset);
    let page;
    try {
      page = await get(`/api/v1/cdr?${q}`);
    } catch (e) {
      showError(filters, e.field === 'since_ms' ? { ...e, field: 'since' } : e.field === 'until_ms' ? { ...e, field: 'until' } : e);
      return;
    }
    const rows = page.records.map((r) => h('tr', { 'data-call': String(r.id) },
      h('td', {}, fmtTime(r.start_ms)),
      h('td', {}, r.caller_name ? `${r.caller} (${r.caller_name})` : r.caller),
      h('td', {}, r.dialled), h('td', {}, r.destination || r.normalised || ''),
      h('td', { class: 'contact' }, r.contact || ''),
      // A forwarded call: who forwarded it, and to which external number.
      h('td', {}, r.forwarded_by ? `${t('forwarded')}: ${r.forwarded_by} → ${r.normalised || ''}` : t(r.direction)), h('td', {}, t(DISPOSITIONS.find(([v]) => v === r.disposition)?.[1] || r.disposition)),
      h('td', {}, fmtDuration(r.billable_secs)), h('td', {}, r.reason || ''), noteCell(r, main),
      // Click-to-dial the other party: whom the user called, or who called the user
      // (a column only for accounts with an extension to call from).
      canDial ? h('td', { class: 'actions' }, dialButton(main, ctx.session, r.caller === ctx.session.extension ? r.dialled : r.caller)) : null));
    const heads = ['Time', 'Caller', 'Dialled', 'Destination', 'Phonebook', 'Direction', 'Result', 'Talk time', 'Reason', 'Note'];
    clear(out).append(rows.length ? table((canDial ? [...heads, 'Call'] : heads).map(t), rows)
      : h('p', { class: 'muted' }, t('No calls match.')));
    clear(pager).append(
      h('button', { type: 'button', class: 'secondary', disabled: offset === 0, onclick: async () => { offset = Math.max(0, offset - PAGE); await load(); } }, t('Newer')),
      h('span', {}, page.records.length ? `${offset + 1}–${offset + page.records.length}` : ''),
      h('button', { type: 'button', class: 'secondary', disabled: !page.has_more, onclick: async () => { offset += PAGE; await load(); } }, t('Older')));
  };
  if (ctx.session.role !== 'admin') {
    main.append(h('p', { class: 'muted' }, ctx.session.extension
      ? `${t('Calls of your extension')} ${ctx.session.extension}.` : t('No extension is linked to your account, so there are no calls to show.')));
  }
  main.append(dialBox(main, ctx.session), h('div', { class: 'card' }, filters), h('p', {}, csv), out, pager);
  await load();
}

// ---- blocks -------------------------------------------------------------------------

async function blocks(main) {
  const box = h('div', {});
  const refresh = async () => {
    const [sip, exts, users] = await Promise.all([get('/api/v1/blocks'), get('/api/v1/extensions'), get('/api/v1/users')]);
    const now = Date.now() / 1000;
    const sipRows = sip.map((b) => h('tr', {}, h('td', {}, b.ip), h('td', {}, b.reason),
      h('td', {}, `${Math.max(0, Math.round((b.until - now) / 60))} min`),
      h('td', { class: 'actions' }, action(t('Lift'), () => act(main, async () => {
        await del(`/api/v1/blocks/${encodeURIComponent(b.ip)}`); await refresh();
      }, tf(t('Block on {ip} lifted.'), { ip: b.ip }))))));
    const extRows = exts.filter((e) => !e.enabled).map((e) => h('tr', {}, h('td', {}, e.number), h('td', {}, e.name || ''),
      h('td', { class: 'actions' }, action(t('Unblock'), () => act(main, async () => {
        await post(`/api/v1/extensions/${e.number}/enable`); await refresh();
      }, tf(t('Extension {n} unblocked.'), { n: e.number }))))));
    const userRows = users.filter((u) => u.disabled).map((u) => h('tr', {}, h('td', {}, u.username), h('td', {}, u.role),
      h('td', { class: 'actions' }, action(t('Unblock'), () => act(main, async () => {
        await post(`/api/v1/users/${encodeURIComponent(u.username)}/enable`); await refresh();
      }, tf(t('User {u} unblocked.'), { u: u.username }))))));
    clear(box).append(
      h('h2', {}, t('Addresses blocked after failed SIP logins')),
      sipRows.length ? table([t('Address'), t('Reason'), t('Remaining'), t('Actions')], sipRows) : h('p', { class: 'muted', id: 'no-sip-blocks' }, t('None.')),
      h('h2', {}, t('Blocked extensions')),
      extRows.length ? table([t('Number'), t('Name'), t('Actions')], extRows) : h('p', { class: 'muted' }, t('None. Block one on the Extensions page.')),
      h('h2', {}, t('Blocked users')),
      userRows.length ? table([t('User'), t('Role'), t('Actions')], userRows) : h('p', { class: 'muted' }, t('None. Block one on the Users page.')));
  };
  main.append(box);
  await refresh();
}

// ---- users --------------------------------------------------------------------------

async function users(main, ctx) {
  const list = h('div', { id: 'user-list' });
  const refresh = async () => {
    const rows = (await get('/api/v1/users')).map((u) => {
      const me = u.username === ctx.session.username;
      const name = encodeURIComponent(u.username);
      return h('tr', { 'data-user': u.username },
        h('td', {}, u.username), h('td', {}, t(u.role === 'admin' ? 'administrator' : 'user')),
        h('td', {}, u.extension || '—'),
        h('td', {}, u.disabled ? h('span', { class: 'state-off' }, t('blocked')) : h('span', { class: 'state-on' }, t('active'))),
        h('td', { class: 'actions' },
          me ? h('span', { class: 'muted' }, t('you')) : [
            u.role === 'admin'
              ? action(t('Revoke admin'), () => act(main, async () => { await put(`/api/v1/users/${name}/role`, { role: 'user' }); await refresh(); }, `${u.username} is a user now.`))
              : action(t('Make admin'), () => act(main, async () => { await put(`/api/v1/users/${name}/role`, { role: 'admin' }); await refresh(); }, `${u.username} is an administrator now.`)),
            u.disabled
              ? action(t('Unblock'), () => act(main, async () => { await post(`/api/v1/users/${name}/enable`); await refresh(); }, `${u.username} unblocked.`))
              : action(t('Block'), () => act(main, async () => { await post(`/api/v1/users/${name}/disable`); await refresh(); }, `${u.username} blocked.`), 'danger'),
            action(t('Delete'), () => {
              if (!confirm(`Delete the account ${u.username}? Its calls stay in the call log.`)) return;
              act(main, async () => { await del(`/api/v1/users/${name}`); await refresh(); }, `${u.username} deleted.`);
            }, 'danger'),
          ]));
    });
    clear(list).append(table(['User', 'Role', 'Extension', 'State', 'Actions'].map(t), rows));
  };
  const exts = await get('/api/v1/extensions');
  const addForm = ctx.submitting(h('form', { class: 'grid', id: 'add-user-form', novalidate: true },
    field(t('User name'), 'username', { autocomplete: 'off', required: true }),
    field(t('Password (at least 10 characters)'), 'password', { type: 'password', autocomplete: 'new-password', required: true }),
    selectField(t('Role'), 'role', [['user', t('User')], ['admin', t('Administrator')]], 'user'),
    selectField(t('Own extension'), 'extension', [['', t('none')], ...exts.map((e) => [e.number, `${e.number} ${e.name || ''}`])], ''),
    formAlert(), h('button', { type: 'submit' }, t('Add user'))), async (v) => {
    await post('/api/v1/users', { username: v.username.trim(), password: v.password, role: v.role, extension: v.extension || null });
    addForm.reset();
    await refresh();
    notice(main, `User ${v.username} added.`);
  });
  main.append(h('div', { class: 'card' }, h('h2', {}, t('Add a user')), addForm), list);
  await refresh();
}

// ---- audit log ----------------------------------------------------------------------

async function audit(main) {
  const body = h('tbody', {});
  const more = h('button', { type: 'button', class: 'secondary' }, t('Older entries'));
  let oldest = null;
  const load = async () => {
    const q = oldest === null ? '' : `?before_id=${oldest}`;
    const entries = await get(`/api/v1/audit${q}`);
    for (const e of entries) {
      body.append(h('tr', {}, h('td', {}, fmtTime(e.at * 1000)), h('td', {}, e.actor), h('td', {}, e.action),
        h('td', {}, e.detail), h('td', {}, e.source)));
      oldest = e.id;
    }
    more.hidden = entries.length < 100;
  };
  more.addEventListener('click', load);
  main.append(h('table', { id: 'audit-table' },
    h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'Details', 'From'].map((x) => h('th', { scope: 'col' }, t(x))))), body),
  h('div', { class: 'pager' }, more));
  await load();
}

// ---- site and own settings -----------------------------------------------------------

async function site(main, ctx) {
  const form = await ctx.siteForm(() => notice(main, t('Site settings saved.')), t('Save'));
  main.append(h('div', { class: 'card' }, form),
    h('p', { class: 'muted' }, t('Trunk, analog ports and GSM are set up on their own pages.')));
}

async function me(main, ctx) {
  if (ctx.session.extension) {
    const s = await get('/api/v1/me/settings');
    const form = ctx.submitting(h('form', { class: 'grid', id: 'my-settings-form', novalidate: true },
      checkbox(t('Do not disturb'), 'dnd', s.dnd),
      field(t('Forward always to'), 'forward_always', { value: s.forward_always || '' }),
      field(t('Forward when busy to'), 'forward_busy', { value: s.forward_busy || '' }),
      field(t('Forward on no answer to'), 'forward_noanswer', { value: s.forward_noanswer || '' }),
      field(t('No-answer time (s)'), 'forward_noanswer_secs', { type: 'number', min: 5, max: 120, value: s.forward_noanswer_secs }),
      formAlert(), h('button', { type: 'submit' }, t('Save'))), async (v) => {
      await put('/api/v1/me/settings', { dnd: v.dnd, forward_always: v.forward_always || null,
        forward_busy: v.forward_busy || null, forward_noanswer: v.forward_noanswer || null,
        forward_noanswer_secs: Number(v.forward_noanswer_secs) });
      notice(main, t('Your call settings are saved.'));
    });
    main.append(h('div', { class: 'card' }, h('h2', {}, `${t('Extension')} ${s.extension}`), form));
  } else {
    main.append(h('p', { class: 'muted' }, t('No extension is linked to your account.')));
  }
  const pw = ctx.submitting(h('form', { class: 'grid', id: 'my-password-form', novalidate: true },
    field(t('Current password'), 'current_password', { type: 'password', autocomplete: 'current-password' }),
    field(t('New password (at least 10 characters)'), 'new_password', { type: 'password', autocomplete: 'new-password' }),
    formAlert(), h('button', { type: 'submit' }, t('Change password'))), async (v) => {
    await put('/api/v1/users/me/password', v);
    pw.reset();
    notice(main, t('Your password is changed. Other sessions of your account were ended.'));
  });
  main.append(h('div', { class: 'card' }, h('h2', {}, t('Web password')), pw));
  const langForm = ctx.submitting(h('form', { class: 'grid', id: 'my-language-form', novalidate: true },
    selectField(t('Language'), 'language', [['en', 'English'], ['de', 'Deutsch']], language()),
    formAlert(), h('button', { type: 'submit' }, t('Save language'))), async (v) => {
    await put('/api/v1/users/me/language', { language: v.language });
    ctx.session.language = v.language;
    setLanguage(v.language);
    ctx.relabel();
    await ctx.rerender();
    notice(main, t('Your language is saved.'));
  });
  main.append(h('div', { class: 'card' }, h('h2', {}, t('Language')), langForm));
}

export const PAGES = {
  dashboard: { title: 'Dashboard', admin: true, render: dashboard },
  extensions: { title: 'Extensions', admin: true, render: extensions },
  'ring-groups': { title: 'Ring groups', admin: true, render: ringGroups },
  calls: { title: 'Call log', admin: false, render: calls },
  phonebook: { title: 'Phonebook', admin: false, render: phonebook },
  blocks: { title: 'Blocks', admin: true, render: blocks },
  trunks: { title: 'Trunks and numbers', admin: true, render: trunks },
  ports: { title: 'Analog ports', admin: true, render: ports },
  gsm: { title: 'GSM and SMS', admin: true, render: gsm },
  users: { title: 'Users', admin: true, render: users },
  audit: { title: 'Audit log', admin: true, render: audit },
  site: { title: 'Site', admin: true, render: site },
  backup: { title: 'Backup', admin: true, render: backup },
  system: { title: 'System', admin: true, render: system },
  certificate: { title: 'Certificate', admin: true, render: certificate },
  diagnostics: { title: 'Diagnostics', admin: true, render: diagnostics },
  firmware: { title: 'Firmware', admin: true, render: firmware },
  me: { title: 'My settings', admin: false, render: me },
};
