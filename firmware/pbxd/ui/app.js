// Start-up and routing: the first-boot wizard while no administrator exists, else the
// login page, else the shell with one page per URL fragment (#/extensions, ...).

import { api, get, post, put, setCsrf } from './api.js';
import { h, clear, field, selectField, showError, formAlert, values } from './dom.js';
import { PAGES } from './pages.js';
import { t, setLanguage } from './i18n.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const logoutButton = document.getElementById('logout');

let session = null;
let leave = null; // the current page's clean-up (closes an event stream)

function setPage(title, ...content) {
  if (leave) { leave(); leave = null; }
  document.title = `${title} · PBX`;
  clear(main).append(h('h1', {}, title), ...content);
}

function submitting(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    try {
      showError(form, null);
      await fn(values(form));
    } catch (e) {
      showError(form, e);
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

// ---- first boot -------------------------------------------------------------------

function wizardAccount() {
  const form = h('form', { id: 'setup-form', novalidate: true },
    h('p', {}, t('Welcome. Create the administrator account. The one-time set-up token is in the device log and in the file setup-token in the data directory.')),
    field(t('Set-up token'), 'token', { autocomplete: 'off', required: true }),
    field(t('Administrator user name'), 'username', { autocomplete: 'username', required: true, value: 'admin' }),
    field(t('Password (at least 10 characters)'), 'password', { type: 'password', autocomplete: 'new-password', required: true }),
    field(t('Repeat password'), 'password2', { type: 'password', autocomplete: 'new-password', required: true }),
    formAlert(),
    h('button', { type: 'submit' }, t('Create administrator')));
  submitting(form, async (v) => {
    if (v.password !== v.password2) {
      throw { field: 'password2', message: t('the passwords differ') };
    }
    await post('/api/v1/setup', { token: v.token.trim(), username: v.username, password: v.password });
    const s = await post('/api/v1/login', { username: v.username, password: v.password });
    startSession(s, false);
    wizardSite();
  });
  setPage(t('First start: administrator'), h('div', { class: 'narrow card' }, form));
}

function timeZones() {
  try { return Intl.supportedValuesOf('timeZone'); } catch (e) { return ['Europe/Berlin', 'UTC']; }
}

export async function siteForm(onSaved, submitText) {
  const site = await get('/api/v1/site');
  const a = site.emergency_address || { street: '', postal_code: '', city: '', details: '' };
  const zones = timeZones();
  if (!zones.includes(site.time_zone)) zones.unshift(site.time_zone);
  const form = h('form', { id: 'site-form', class: 'grid', novalidate: true },
    field(t('Country code (49 for Germany)'), 'country_code', { value: site.country_code, inputmode: 'numeric' }),
    field(t('Area code without 0 (e.g. 211)'), 'area_code', { value: site.area_code, inputmode: 'numeric' }),
    selectField(t('Time zone'), 'time_zone', zones.map((z) => [z, z]), site.time_zone),
    field(t('Emergency address: street and number'), 'emergency_address.street', { value: a.street }),
    field(t('Postal code'), 'emergency_address.postal_code', { value: a.postal_code }),
    field(t('City'), 'emergency_address.city', { value: a.city }),
    field(t('Floor, room (optional)'), 'emergency_address.details', { value: a.details }),
    formAlert(),
    h('button', { type: 'submit' }, submitText));
  return submitting(form, async (v) => {
    await put('/api/v1/site', {
      country_code: v.country_code,
      area_code: v.area_code,
      time_zone: v.time_zone,
      emergency_address: {
        street: v['emergency_address.street'],
        postal_code: v['emergency_address.postal_code'],
        city: v['emergency_address.city'],
        details: v['emergency_address.details'],
      },
    });
    onSaved();
  });
}

async function wizardSite() {
  const form = await siteForm(() => { location.hash = '#/dashboard'; route(); }, t('Save and finish'));
  setPage(t('First start: site'),
    h('p', {}, t('The emergency address is sent with calls to 110 and 112: enter where this box and its phones are.')),
    h('p', { class: 'muted' }, t('Trunk, analog ports and GSM are set up on their own pages once those features are available.')),
    h('div', { class: 'card' }, form));
}

// ---- login and shell --------------------------------------------------------------

function loginPage(message) {
  showShell(false);
  const form = h('form', { id: 'login-form', novalidate: true },
    message ? h('p', { class: 'notice' }, message) : null,
    field(t('User name'), 'username', { autocomplete: 'username', required: true }),
    field(t('Password'), 'password', { type: 'password', autocomplete: 'current-password', required: true }),
    formAlert(),
    h('button', { type: 'submit' }, t('Log in')));
  submitting(form, async (v) => {
    const s = await post('/api/v1/login', v);
    startSession(s, true);
  });
  setPage(t('Log in'), h('div', { class: 'narrow card' }, form));
  form.querySelector('input').focus();
}

function startSession(s, go) {
  session = s;
  setCsrf(s.csrf_token);
  setLanguage(s.language);
  showShell(true);
  if (go) route();
}

function showShell(on) {
  nav.hidden = !on;
  logoutButton.hidden = !on;
  logoutButton.textContent = t('Log out');
  if (!on) { who.textContent = ''; clear(nav); return; }
  who.textContent = `${session.username} (${t(session.role === 'admin' ? 'administrator' : 'user')})`;
  clear(nav);
  for (const [path, p] of Object.entries(PAGES)) {
    if (p.admin && session.role !== 'admin') continue;
    nav.append(h('a', { href: `#/${path}`, 'data-page': path }, t(p.title)));
  }
}

function markCurrent(name) {
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function route() {
  if (!session) return;
  const wanted = (location.hash.replace(/^#\//, '') || '').split('?')[0];
  const fallback = session.role === 'admin' ? 'dashboard' : 'calls';
  let name = PAGES[wanted] ? wanted : fallback;
  if (PAGES[name].admin && session.role !== 'admin') name = fallback;
  markCurrent(name);
  const page = PAGES[name];
  setPage(t(page.title));
  try {
    const relabel = () => { showShell(true); markCurrent(name); };
    leave = (await page.render(main, { session, setPage, submitting, siteForm, relabel, rerender: route })) || null;
  } catch (e) {
    main.append(h('p', { class: 'alert', role: 'alert' }, e.message));
  }
}

logoutButton.addEventListener('click', async () => {
  try { await post('/api/v1/logout'); } catch (e) { /* gone already */ }
  session = null;
  setCsrf('');
  loginPage(t('You are logged out.'));
});

window.addEventListener('hashchange', route);
window.addEventListener('pbx-logged-out', () => {
  if (!session) return;
  session = null;
  loginPage(t('Your session has ended. Please log in again.'));
});

async function boot() {
  try {
    const setup = await get('/api/v1/setup');
    if (setup.setup_required) { setLanguage((navigator.language || '').startsWith('de') ? 'de' : 'en'); wizardAccount(); return; }
  } catch (e) {
    setPage('Error', h('p', { class: 'alert' }, e.message));
    return;
  }
  try {
    const s = await api('GET', '/api/v1/session');
    startSession(s, true);
  } catch (e) {
    loginPage();
  }
}

boot();
