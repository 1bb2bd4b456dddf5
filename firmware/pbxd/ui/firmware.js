// Firmware (administrators): version, slots and the last install from the update
// module, and a bundle upload that installs into the inactive slot with the same rules
// as `pbxctl update install` (not during calls unless forced, never during an
// emergency call). Progress and the installer's last error are shown while it runs.

import { get, raw } from './api.js';
import { h, clear, checkbox, formAlert, table, showError } from './dom.js';
import { t, fmtDateTime, fmtBytes } from './i18n.js';

const POLL_MS = 1000;

function jobView(job) {
  if (!job.state) return h('p', { class: 'muted', id: 'fw-job' }, t('No installation from this page since pbxd started.'));
  const when = job.started_at ? ` · ${t('started')} ${fmtDateTime(job.started_at * 1000)}` : '';
  if (job.state === 'failed') {
    return h('div', { class: 'alert', id: 'fw-job', role: 'alert' }, `${t('Installation failed:')} ${job.last_error || ''}`);
  }
  if (job.state === 'installed') {
    return h('p', { class: 'notice', id: 'fw-job' },
      `${t('Installed; it boots at the next restart.')}${job.next_slot ? ` ${t('Next slot:')} ${job.next_slot}` : ''}`);
  }
  return h('div', { id: 'fw-job' },
    h('progress', { max: 100, value: job.percent, 'aria-label': t('Progress') }),
    h('span', {}, ` ${job.percent}% ${job.message}${when}`));
}

function statusView(v) {
  const rows = [[t('Version'), v.version], [t('Update system'), v.backend],
    [t('Maintenance window'), v.maintenance_window || t('any time')]];
  const parts = [h('table', { class: 'kv', id: 'fw-info' }, h('tbody', {},
    rows.map(([k, x]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, x)))))];
  if (v.status) {
    const s = v.status;
    parts.push(h('p', {}, `${t('Booted from')} ${s.boot_slot}; ${t('next boot')}: ${s.primary || '–'}; ${t('compatible')}: ${s.compatible}`),
      table(['Slot', 'State', 'Boot status', 'Version', 'Installed'].map(t), s.slots.map((sl) => h('tr', {},
        h('td', {}, `${sl.name}${sl.bootname ? ` (${sl.bootname})` : ''}`), h('td', {}, sl.state), h('td', {}, sl.boot_status || '–'),
        h('td', {}, sl.bundle_version || '–'), h('td', {}, sl.installed_at || '–')))));
  } else if (v.status_error) {
    parts.push(h('p', { class: 'muted', id: 'fw-status-error' }, `${t('Slots unavailable:')} ${v.status_error}`));
  }
  return parts;
}

export async function firmware(main) {
  const info = h('div', { id: 'fw-state' });
  const job = h('div', { id: 'fw-job-box' });
  let timer = null;
  const load = async () => {
    const v = await get('/api/v1/firmware');
    clear(info).append(...statusView(v));
    clear(job).append(jobView(v.job));
    if (v.job.state === 'installing' && !timer) timer = setInterval(() => { load().catch(() => {}); }, POLL_MS);
    if (v.job.state !== 'installing' && timer) { clearInterval(timer); timer = null; }
    return v;
  };
  const v = await load();
  const file = h('input', { type: 'file', id: 'fw-file', name: 'file', accept: '.raucb,application/octet-stream' });
  const err = h('span', { class: 'error', 'data-error-for': 'file', role: 'alert' });
  const form = h('form', { id: 'fw-form', novalidate: true },
    h('label', { for: 'fw-file' }, t('Update bundle (.raucb)'), file, err),
    h('p', { class: 'muted' }, `${t('At most')} ${fmtBytes(v.max_bundle_bytes)}. ${t('The signature and the board are checked before anything is written.')}`),
    checkbox(t('Install even while calls are up or outside the maintenance window (never during an emergency call)'), 'force', false),
    formAlert(),
    h('button', { type: 'submit' }, t('Upload and install')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, null);
    const f = file.files[0];
    if (!f) { showError(form, { field: 'file', message: t('Choose a bundle file first.') }); return; }
    const force = form.elements.force.checked;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    clear(job).append(h('p', { id: 'fw-job' }, t('Uploading…')));
    try {
      // The File is sent as it is read: the browser streams it.
      await raw('POST', `/api/v1/firmware${force ? '?force=true' : ''}`, f, 'application/octet-stream');
      await load();
    } catch (e) {
      if (e.status === 413) e.message = t('The file is larger than the box accepts.');
      showError(form, e);
      await load().catch(() => {});
    } finally {
      button.disabled = false;
    }
  });
  main.append(h('div', { class: 'card' }, h('h2', {}, t('Installed firmware')), info),
    h('div', { class: 'card' }, h('h2', {}, t('Install an update')), form, job));
  return () => { if (timer) clearInterval(timer); };
}
