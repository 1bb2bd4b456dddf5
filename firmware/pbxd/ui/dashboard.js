// The dashboard: live status from the server-sent event stream /api/v1/events.

import { h, clear, table, fmtDuration } from './dom.js';
import { alertList } from './admin.js';
import { t, fmtNumber, locale } from './i18n.js';

function uptime(secs) {
  const d = Math.floor(secs / 86400);
  return d > 0 ? `${d} d ${fmtDuration(secs % 86400)}` : fmtDuration(secs);
}


export async function dashboard(main) {
  const regs = h('div', { class: 'figure', id: 'dash-registrations' }, '–');
  const callsNow = h('div', { class: 'figure', id: 'dash-calls' }, '–');
  const up = h('div', { class: 'figure', id: 'dash-uptime' }, '–');
  const phones = h('div', { id: 'dash-phones' });
  const live = h('p', { class: 'muted', id: 'dash-live', role: 'status' }, t('Connecting…'));
  const alerts = h('div', { id: 'dash-alerts', 'aria-live': 'polite' });
  let alertsSeen = null;
  const card = (title, fig) => h('div', { class: 'card' }, h('div', { class: 'muted' }, title), fig);
  const trunk = h('div', { class: 'figure', id: 'dash-trunk' }, '–');
  const ports = h('div', { class: 'figure', id: 'dash-ports' }, '–');
  const gsm = h('div', { class: 'figure', id: 'dash-gsm' }, '–');
  main.append(
    h('h2', {}, t('Alerts')), alerts,
    h('div', { class: 'cards' }, card(t('Registered phones'), regs), card(t('Active calls'), callsNow), card(t('Uptime'), up)),
    h('div', { class: 'cards' }, card(t('Trunk'), trunk), card(t('Analog ports'), ports), card(t('GSM'), gsm)),
    h('h2', {}, t('Registered phones')), phones, live);
  const show = (s) => {
    // Re-render the alerts only when they change (keeps keyboard focus on a button).
    const seen = JSON.stringify(s.alerts.map((a) => [a.id, a.updated_at, a.message]));
    if (seen !== alertsSeen) {
      alertsSeen = seen;
      clear(alerts).append(alertList(s.alerts, () => {
        const li = alerts.querySelector('li');
        if (li) li.remove();
        alertsSeen = null;
      }));
    }
    regs.textContent = fmtNumber(s.registrations);
    callsNow.textContent = fmtNumber(s.active_calls);
    up.textContent = uptime(s.uptime_secs);
    for (const [el, v] of [[trunk, s.trunk], [ports, s.analog_ports], [gsm, s.gsm]]) {
      el.textContent = v === 'not_configured' ? t('not configured') : v;
    }
    const rows = s.phones.map((p) => h('tr', {}, h('td', {}, p.extension), h('td', {}, p.transport.toUpperCase()),
      h('td', {}, p.source), h('td', {}, p.user_agent || ''), h('td', {}, `${p.expires_in} s`)));
    clear(phones).append(rows.length ? table([t('Extension'), t('Transport'), t('Address'), t('Phone'), t('Expires in')], rows)
      : h('p', { class: 'muted' }, t('No phone is registered.')));
    live.textContent = `${t('Live · updated')} ${new Date().toLocaleTimeString(locale())}`;
  };
  const source = new EventSource('/api/v1/events');
  source.addEventListener('status', (ev) => show(JSON.parse(ev.data)));
  source.addEventListener('error', () => { live.textContent = t('Connection lost; retrying…'); });
  return () => source.close();
}
