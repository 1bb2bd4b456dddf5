// Administration pages: alerts (on the dashboard), backup and restore, System, and
// Diagnostics with the support bundle.

import { get, post, raw } from './api.js';
import { h, clear, field, checkbox, formAlert, table, fmtDuration, showError } from './dom.js';
import { t, fmtDateTime, fmtBytes, locale } from './i18n.js';

const SEVERITY = { critical: 'Critical', warning: 'Warning', info: 'Information' };

// The open alerts, most severe first (the server's order), each with its wording and an
// acknowledge button; `onChange` runs after one is acknowledged.
export function alertList(alerts, onChange) {
  if (!alerts.length) {
    return h('p', { class: 'notice', id: 'alerts-none' }, t('No open alerts: everything is working.'));
  }
  return h('ul', { class: 'alerts', id: 'alert-list' }, alerts.map((a) => h('li', { class: `alert-item sev-${a.severity}`, 'data-key': a.key },
    h('span', { class: 'sev' }, t(SEVERITY[a.severity] || a.severity)),
    h('span', { class: 'msg' }, a.message),
    h('span', { class: 'muted when' }, `${t('since')} ${fmtDateTime(a.raised_at * 1000)}`),
    h('button', { type: 'button', class: 'secondary', 'data-dismiss': a.id, onclick: async (ev) => {
      ev.target.disabled = true;
      try { await post(`/api/v1/alerts/${a.id}/dismiss`); } catch (e) { ev.target.disabled = false; return; }
      if (onChange) onChange();
    } }, t('Acknowledge')))));
}

// Saves a Response body as a file through a temporary link.
async function saveDownload(resp, fallbackName) {
  const disp = resp.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(disp);
  const url = URL.createObjectURL(await resp.blob());
  const a = h('a', { href: url, download: m ? m[1] : fallbackName, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- backup and restore -----------------------------------------------------------------

export async function backup(main) {
  const download = h('a', { href: '/api/v1/backup', id: 'backup-download', class: 'button', download: '' }, t('Download backup'));
  const file = h('input', { type: 'file', id: 'restore-file', name: 'file', accept: '.pbxbackup,application/octet-stream' });
  const err = h('span', { class: 'error', 'data-error-for': 'file', role: 'alert' });
  const result = h('div', { id: 'restore-result', role: 'status' });
  const form = h('form', { id: 'restore-form', novalidate: true },
    h('label', { for: 'restore-file' }, t('Backup file'), file, err),
    checkbox(t('Restore from another box'), 'allow_foreign', false),
    formAlert(),
    h('button', { type: 'submit', class: 'danger' }, t('Restore backup')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, null);
    clear(result);
    const f = file.files[0];
    if (!f) { showError(form, { field: 'file', message: t('Choose a backup file first.') }); return; }
    const foreign = form.elements.allow_foreign.checked;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const resp = await raw('POST', `/api/v1/restore${foreign ? '?allow_foreign=true' : ''}`, await f.arrayBuffer(), 'application/octet-stream');
      const report = await resp.json();
      result.append(h('p', { class: 'notice', id: 'restore-done' }, t('The configuration was restored. Everyone must log in again.')),
        h('p', { class: 'alert', id: 'restore-restart' }, t('Restart pbxd (or the box) now: the running telephony picks up the restored configuration only after a restart.')));
      if (report.dropped_secrets.length) {
        result.append(h('div', { class: 'alert', id: 'restore-dropped' },
          t('These secrets came from another box and must be entered again:'),
          h('ul', {}, report.dropped_secrets.map((s) => h('li', {}, s)))));
      }
    } catch (e) {
      showError(form, e);
    } finally {
      button.disabled = false;
    }
  });
  main.append(
    h('div', { class: 'card' }, h('h2', {}, t('Download a backup')),
      h('p', {}, t('backup-what')),
      h('p', { class: 'muted', id: 'backup-sealed-note' }, t('backup-sealed')),
      download),
    h('div', { class: 'card' }, h('h2', {}, t('Restore')),
      h('p', {}, t('restore-what')),
      form, result));
}

// ---- system -------------------------------------------------------------------------------

export async function system(main) {
  const s = await get('/api/v1/system');
  const row = (label, value, id) => h('tr', {}, h('th', { scope: 'row' }, t(label)), h('td', { id }, value));
  const disk = s.data_partition
    ? `${fmtBytes(s.data_partition.free_bytes)} ${t('free of')} ${fmtBytes(s.data_partition.total_bytes)} (${s.data_partition.path})`
    : '—';
  const d = Math.floor(s.uptime_secs / 86400);
  const up = d > 0 ? `${d} d ${fmtDuration(s.uptime_secs % 86400)}` : fmtDuration(s.uptime_secs);
  let local = fmtDateTime(s.time_unix * 1000);
  try {
    local = new Intl.DateTimeFormat(locale(),
      { dateStyle: 'medium', timeStyle: 'medium', timeZone: s.time_zone }).format(new Date(s.time_unix * 1000));
  } catch (e) { /* unknown zone in this browser: show the browser's time */ }
  main.append(h('table', { class: 'kv', id: 'system-table' }, h('tbody', {},
    row('Version', `pbxd ${s.version} (schema ${s.schema_version}, ${s.compatible})`, 'sys-version'),
    row('Device', s.device_id, 'sys-device'),
    row('Uptime', up, 'sys-uptime'),
    row('Time', local, 'sys-time'),
    row('Time zone', s.time_zone, 'sys-tz'),
    row('Country code', `+${s.country_code}`, 'sys-country'),
    row('Tone set', s.tone_set, 'sys-tones'),
    row('Data partition', disk, 'sys-disk'))),
  h('h2', {}, t('Network addresses')),
  table([t('Interface'), t('Address')], s.addresses.map((a) => h('tr', {}, h('td', {}, a.interface), h('td', {}, a.address)))));
}

// ---- diagnostics --------------------------------------------------------------------------

export async function diagnostics(main, ctx) {
  const area = (label, name, attrs = {}) => {
    const id = `sup-${name}`;
    return h('label', { for: id }, t(label),
      h('textarea', { id, name, rows: 2, maxlength: 2000, ...attrs }),
      h('span', { class: 'error', 'data-error-for': name, role: 'alert' }));
  };
  const form = h('form', { id: 'support-form', class: 'grid', novalidate: true },
    area('Affected users', 'affected_users'),
    field(t('When did it happen?'), 'time', { value: fmtDateTime(Date.now()) }),
    area('Error message', 'error_message'),
    field(t('Browser'), 'browser', { value: navigator.userAgent }),
    field(t('Package or plan (optional)'), 'plan'),
    area('Steps already tried', 'steps_tried'),
    formAlert(),
    h('button', { type: 'submit' }, t('Download support bundle')));
  ctx.submitting(form, async (v) => {
    const resp = await raw('POST', '/api/v1/support-bundle', JSON.stringify(v), 'application/json');
    await saveDownload(resp, 'pbx-support.tar');
    const old = main.querySelector('#support-done');
    if (old) old.remove();
    form.after(h('p', { class: 'notice', id: 'support-done', role: 'status' }, t('The support bundle is downloaded.')));
  });
  const hist = await get('/api/v1/alerts');
  const rows = hist.recent.map((a) => h('tr', {}, h('td', {}, fmtDateTime(a.raised_at * 1000)), h('td', {}, t(SEVERITY[a.severity] || a.severity)),
    h('td', {}, a.message), h('td', {}, a.cleared_at ? t('cleared') : t('open'))));
  main.append(h('div', { class: 'card' }, h('h2', {}, t('Support request')), h('p', {}, t('support-what')), form),
  h('h2', {}, t('Alert history')),
  rows.length ? table([t('Time'), t('Severity'), t('Message'), t('State')], rows) : h('p', { class: 'muted' }, '—'));
}
