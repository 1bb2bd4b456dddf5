// The dashboard: live status from the server-sent event stream /api/v1/events.

import { h, clear, table, fmtDuration } from './dom.js';

function uptime(secs) {
  const d = Math.floor(secs / 86400);
  return d > 0 ? `${d} d ${fmtDuration(secs % 86400)}` : fmtDuration(secs);
}

const NOT_CONFIGURED = 'not configured';

export async function dashboard(main) {
  const regs = h('div', { class: 'figure', id: 'dash-registrations' }, '–');
  const callsNow = h('div', { class: 'figure', id: 'dash-calls' }, '–');
  const up = h('div', { class: 'figure', id: 'dash-uptime' }, '–');
  const phones = h('div', { id: 'dash-phones' });
  const live = h('p', { class: 'muted', id: 'dash-live', role: 'status' }, 'Connecting…');
  const card = (title, fig) => h('div', { class: 'card' }, h('div', { class: 'muted' }, title), fig);
  const trunk = h('div', { class: 'figure', id: 'dash-trunk' }, '–');
  const ports = h('div', { class: 'figure', id: 'dash-ports' }, '–');
  const gsm = h('div', { class: 'figure', id: 'dash-gsm' }, '–');
  main.append(
    h('div', { class: 'cards' }, card('Registered phones', regs), card('Active calls', callsNow), card('Uptime', up)),
    h('div', { class: 'cards' }, card('Trunk', trunk), card('Analog ports', ports), card('GSM', gsm)),
    h('h2', {}, 'Registered phones'), phones, live);
  const show = (s) => {
    regs.textContent = s.registrations;
    callsNow.textContent = s.active_calls;
    up.textContent = uptime(s.uptime_secs);
    for (const [el, v] of [[trunk, s.trunk], [ports, s.analog_ports], [gsm, s.gsm]]) {
      el.textContent = v === 'not_configured' ? NOT_CONFIGURED : v;
    }
    const rows = s.phones.map((p) => h('tr', {}, h('td', {}, p.extension), h('td', {}, p.transport.toUpperCase()),
      h('td', {}, p.source), h('td', {}, p.user_agent || ''), h('td', {}, `${p.expires_in} s`)));
    clear(phones).append(rows.length ? table(['Extension', 'Transport', 'Address', 'Phone', 'Expires in'], rows)
      : h('p', { class: 'muted' }, 'No phone is registered.'));
    live.textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
  };
  const source = new EventSource('/api/v1/events');
  source.addEventListener('status', (ev) => show(JSON.parse(ev.data)));
  source.addEventListener('error', () => { live.textContent = 'Connection lost; retrying…'; });
  return () => source.close();
}
