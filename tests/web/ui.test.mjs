// The web UI in a real browser: Debian's chromium (headless) driven by playwright-core
// (executablePath, no browser download), against a real pbxd with a fresh data directory.
//
// One scenario, in order, as an installer and then an office user meet the box:
// first-boot wizard with the set-up token, site settings (a per-field error first),
// dashboard with live status, add extensions and see them listed, phones register (sipp)
// and show on the dashboard, a real call 101 -> 102 between two sipp phones (counted live
// on the dashboard), add a user, call log (that call next to seeded records) with filters
// and CSV download, no Content-Security-Policy violation on any page (and a
// deliberate inline script is refused, which proves the check can fail), then the user:
// no admin pages, 403 from admin endpoints, only own calls, own CSV.
//
// Environment: PBXD_BIN (the pbxd binary), WEB_ARTIFACTS (screenshots and logs go there).
// Run: scripts/test.d/web-ui.sh (or `node --test tests/web/ui.test.mjs` after `npm ci`).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PBXD = process.env.PBXD_BIN || 'target/debug/pbxd';
const ARTIFACTS = process.env.WEB_ARTIFACTS || 'web-artifacts';
const ADMIN_PW = 'admin-password-1';
const ANNA_PW = 'anna-password-1';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A pbxd on free loopback ports with its own data directory. */
class Pbxd {
  static async start(data) {
    const p = new Pbxd();
    p.data = data;
    p.log = [];
    p.proc = spawn(PBXD, ['--data-dir', data, '--sip-listen', '127.0.0.1:0',
      '--http-listen', '127.0.0.1:0', '--https-listen', '127.0.0.1:0',
      // No emulated ports or modem: the emulated SIM's PIN alert would mix in.
      '--hardware', 'none'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PBXD_LOG: 'info' } });
    p.exited = new Promise((r) => {
      p.proc.once('exit', r);
      // A binary that cannot start: no 'exit' follows, and the log says why.
      p.proc.once('error', (e) => { p.failed = true; p.log.push(`${PBXD}: ${e.message}\n`); r(); });
    });
    const ready = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), 30_000);
      const lines = createInterface({ input: p.proc.stderr });
      let found = false;
      lines.on('line', (line) => {
        p.log.push(line + '\n');
        if (!found && line.includes('ready:')) {
          found = true;
          clearTimeout(timer);
          resolve(line);
        }
      });
      lines.on('close', () => { clearTimeout(timer); if (!found) resolve(null); });
    });
    if (ready === null) {
      await p.stop();
      await p.exited;
      throw new Error('pbxd did not get ready:\n' + p.log.join(''));
    }
    p.https = Number(/ https=[^ ]*:(\d+)/.exec(ready)[1]);
    p.sip = Number(/ sip=[^ ]*:(\d+)/.exec(ready)[1]);
    p.url = `https://127.0.0.1:${p.https}`;
    return p;
  }

  async stop() {
    if (this.failed || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A free local UDP port (sipp binds it right after). */
async function freeUdpPort() {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** A sipp phone running tests/sipp/SCENARIO for one call as USER (digest auth with
 * PASSWORD from the injection file), on its own free local port. Async, not spawnSync: the
 * browser keeps receiving server-sent events meanwhile. `done` resolves to sipp's exit code
 * and the tail of its output. */
async function startSipp(tmp, sipPort, scenario, user, password, args = [], limitMs = 30_000) {
  const inf = path.join(tmp, `users-${user}-${path.basename(scenario, '.xml')}.csv`);
  fs.writeFileSync(inf, `SEQUENTIAL\n${user};[authentication username=${user} password=${password}]\n`);
  const localPort = await freeUdpPort();
  const run = spawn('sipp', ['-sf', path.join(HERE, '..', 'sipp', scenario), '-inf', inf, '-m', '1',
    '-t', 'u1', '-i', '127.0.0.1', '-p', String(localPort), '-nostdin', ...args,
    `127.0.0.1:${sipPort}`], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  run.stdout.on('data', (d) => { out += d; });
  run.stderr.on('data', (d) => { out += d; });
  const killer = setTimeout(() => run.kill('SIGKILL'), limitMs);
  const done = new Promise((r) => run.once('close', (c) => {
    clearTimeout(killer);
    r({ code: c, out: `sipp ${scenario} as ${user}:\n${out.slice(-4000)}` });
  }));
  return { done };
}

/** A real SIP REGISTER with digest auth by sipp (tests/sipp/register.xml). */
async function registerPhone(tmp, sipPort, user, password) {
  const phone = await startSipp(tmp, sipPort, 'register.xml', user, password,
    ['-timeout', '20s', '-timeout_error']);
  return phone.done;
}

/** SQL into pbxd's database by Debian's sqlite3 CLI (pbxd runs meanwhile: busy timeout). */
function sql(data, script) {
  const run = spawnSync('sqlite3', ['-bail', path.join(data, 'pbx.db')],
    { input: `.timeout 10000\nBEGIN;\n${script}\nCOMMIT;\n`, encoding: 'utf8' });
  assert.equal(run.status, 0, `sqlite3 failed: ${run.stderr}`);
}

/** Call records as call control writes them (the store's call_records table):
 * anna's extension 101 in two calls, a third call between others. */
function seedCalls(data) {
  const now = Date.now();
  const rows = [
    ['call-a', '101', '102', '102', now - 3_600_000, now - 3_590_000, now - 3_500_000, 'answered'],
    ['call-b', '103', '104', '104', now - 1_800_000, 'NULL', now - 1_790_000, 'busy'],
    ['call-c', '102', '101', '101', now - 600_000, 'NULL', now - 580_000, 'no_answer'],
  ];
  sql(data, rows.map(([id, caller, dialled, dest, start, answer, end, disp]) =>
    'INSERT INTO call_records (call_id, caller, dialled, destination, direction,'
    + ' start_ms, answer_ms, end_ms, disposition)'
    + ` VALUES ('${id}','${caller}','${dialled}','${dest}','internal',${start},${answer},${end},'${disp}');`)
    .join('\n'));
}

/** The modem task's report (a PIN the SIM refused, 2 attempts left) and a received SMS. */
function seedGsm(data) {
  const now = Math.floor(Date.now() / 1000);
  sql(data, `
INSERT OR REPLACE INTO gsm_status (id, sim, registration, operator, signal_dbm, pin_left, puk_left,
  last_error, updated_at)
  VALUES (1, 'PIN needed', 'not registered', NULL, -71, 2, 10, 'the SIM rejected the PIN', ${now});
UPDATE gsm_settings SET pin_sealed = 'v1:00', pin_rejected = 1 WHERE id = 1;
INSERT INTO sms (direction, peer, at, text, parts, read, status)
  VALUES ('in', '+491701234567', ${now - 60}, 'Lieferung kommt um 10 Uhr', 1, 0, 'received');`);
}

/** Alerts as the trunk and GSM features raise them (the store's alerts table). */
function seedAlerts(data) {
  const now = Math.floor(Date.now() / 1000);
  sql(data, [
    ['trunk:main:balance', 'warning',
      'Outgoing calls fail: the provider reports the prepaid balance is used up.'],
    ['gsm:no-sim', 'critical',
      'No SIM in the GSM module: no mobile fallback for emergency calls.'],
  ].map(([key, sev, msg]) => 'INSERT INTO alerts (key, severity, message, raised_at, updated_at)'
    + ` VALUES ('${key}','${sev}','${msg}',${now},${now});`).join('\n'));
}

/** Two analog ports as pbxd reports them (port_status): port 1 idle, port 2 faulty. */
function seedPorts(data) {
  const now = Math.floor(Date.now() / 1000);
  sql(data, `
INSERT OR REPLACE INTO port_status (port, number, hook, linefeed, call, faulty, updated_at)
  VALUES (1, '21', 'on', 'forward', 'idle', NULL, ${now});
INSERT OR REPLACE INTO port_status (port, number, hook, linefeed, call, faulty, updated_at)
  VALUES (2, '22', 'on', 'open', 'idle', 'wrong chip ID 0x00 (expected 0xc3)', ${now});`);
}

/** RFC 4180 CSV into rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

/** A browser console entry reporting a Content-Security-Policy violation. */
const isCsp = (e) => e.text.includes('Content Security Policy') || e.text.includes('Refused to');

let tmp; let data; let pbx; let browser; let context; let page;
const consoleLog = []; // every console entry and uncaught page error, in order
let consoleSeen = 0;

function watch(p) {
  // Console API calls and the browser's own log (CSP violations, failed loads).
  p.on('console', (m) => consoleLog.push({
    source: 'console', type: m.type(), text: m.text(), page: p.url(), at: m.location().url,
  }));
  // An uncaught exception in the page's own scripts (what chromedriver logged as "javascript").
  p.on('pageerror', (e) => consoleLog.push({
    source: 'javascript', type: 'error', text: e.stack || String(e), page: p.url(),
  }));
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pbx-web-'));
  data = path.join(tmp, 'data');
  pbx = await Pbxd.start(data);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  context = await browser.newContext({
    ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 }, locale: 'en-US',
    acceptDownloads: true,
  });
  page = await context.newPage();
  watch(page);
});

after(async () => {
  try {
    if (browser) await browser.close();
  } finally {
    if (pbx) {
      await pbx.stop();
      fs.writeFileSync(path.join(ARTIFACTS, 'pbxd.log'), pbx.log.join(''));
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'console.log'),
      consoleLog.map((e) => JSON.stringify(e)).join('\n') + '\n');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// ---- helpers ------------------------------------------------------------------------

/** Console entries since the last call. */
function logs() {
  const fresh = consoleLog.slice(consoleSeen);
  consoleSeen = consoleLog.length;
  return fresh;
}

const cspViolations = () => logs().filter(isCsp).map((e) => e.text);

/** The first element matching css, once visible. */
async function wait(css, timeout = 10_000) {
  const el = page.locator(css).first();
  await el.waitFor({ state: 'visible', timeout });
  return el;
}

/** Poll until cond() is true (a failure names what). */
async function until(cond, what, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** The first element matching css shows this text (its visible text, like Selenium's). */
async function waitText(css, text, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let got = '<missing>';
  for (;;) {
    const el = page.locator(css).first();
    got = (await el.count()) ? await el.innerText().catch(() => '<gone>') : '<missing>';
    if (got.includes(text)) return;
    if (Date.now() > deadline) assert.fail(`${css}: wanted ${JSON.stringify(text)}, got ${JSON.stringify(got)}`);
    await sleep(100);
  }
}

const text = (css) => page.locator(css).first().innerText();
const count = (css) => page.locator(css).count();
const rowTexts = (css) => page.locator(css).allInnerTexts();

async function fill(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const el = page.locator(`${form} [name="${name}"]`).first();
    if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(value);
    else await el.fill(value);
  }
}

const select = (css, value) => page.locator(css).first().selectOption(value);
const submit = (form) => page.locator(`${form} button[type="submit"]`).first().click();
const click = (selector) => page.locator(selector).first().click();

async function shot(name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

async function go(p, readyCss) {
  await page.goto(`${pbx.url}/#/${p}`);
  await wait(readyCss);
}

/** The HTTP status of a same-origin fetch from the page (with its session cookie). */
const fetchStatus = (p) => page.evaluate(
  (u) => fetch(u, { credentials: 'same-origin' }).then((r) => r.status, (e) => String(e)), p);

/** Click and take the file the browser downloads; its name ends with suffix. */
async function download(selector, suffix) {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), click(selector)]);
  const name = dl.suggestedFilename();
  assert.ok(name.endsWith(suffix), `downloaded ${name}, wanted *${suffix}`);
  const dst = path.join(tmp, name);
  await dl.saveAs(dst);
  assert.equal(await dl.failure(), null);
  return dst;
}

async function downloadedCsv(selector) {
  const file = await download(selector, '.csv');
  const rows = parseCsv(fs.readFileSync(file, 'utf8'));
  fs.rmSync(file);
  return rows;
}

async function login(user, password) {
  await context.clearCookies();
  await page.goto(pbx.url + '/');
  await wait('#login-form');
  await fill('#login-form', { username: user, password });
  await submit('#login-form');
  await wait('#nav a');
}

// ---- the scenario -------------------------------------------------------------------

test('installer then user', async () => {
  // 0. Before any account exists the wizard follows the browser's language: German for a
  // browser set to German (a context with locale de-DE sets navigator.language), then
  // English again.
  {
    const german = await browser.newContext({
      ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 }, locale: 'de-DE',
    });
    const saved = page;
    page = await german.newPage();
    watch(page);
    try {
      await page.goto(pbx.url + '/');
      await waitText('#setup-form button[type="submit"]', 'Administrator anlegen');
      assert.ok((await text('#setup-form')).includes('Einrichtungs-Token'));
      await shot('01a-wizard-account-german');
    } finally {
      await german.close();
      page = saved;
    }
  }
  // 1. First boot: the wizard asks for the token and creates the administrator.
  await page.goto(pbx.url + '/');
  await waitText('#setup-form button[type="submit"]', 'Create administrator');
  await wait('#setup-form');
  await shot('01-wizard-account');
  const token = fs.readFileSync(path.join(data, 'setup-token'), 'utf8').trim();
  await fill('#setup-form', { token: '0'.repeat(64), username: 'admin', password: ADMIN_PW, password2: ADMIN_PW });
  await submit('#setup-form');
  await waitText('#setup-form [data-error-for="token"]', 'wrong set-up token');
  await fill('#setup-form', { token });
  await submit('#setup-form');

  // 2. Site step: a bad area code is named at its field, then the site is saved.
  await wait('#site-form');
  await fill('#site-form', {
    area_code: '0211', 'emergency_address.street': 'Königsallee 1',
    'emergency_address.postal_code': '40212', 'emergency_address.city': 'Düsseldorf',
  });
  await select('#site-form [name="time_zone"]', 'Europe/Berlin');
  await submit('#site-form');
  await waitText('#site-form [data-error-for="area_code"]', 'without the leading 0');
  await shot('02-wizard-site-error');
  await fill('#site-form', { area_code: '211' });
  await submit('#site-form');

  // 3. Dashboard: live figures by server-sent events; unbuilt parts say so.
  await waitText('#dash-live', 'Live');
  assert.equal(await text('#dash-registrations'), '0');
  assert.equal(await text('#dash-trunk'), 'not configured');
  assert.equal(await text('#dash-gsm'), 'not configured');
  assert.ok(!fs.existsSync(path.join(data, 'setup-token')), 'the set-up token dies after use');
  await shot('03-dashboard');

  // 4. Extensions: a refused number is explained at its field; a good one is listed.
  await go('extensions', '#add-extension-form');
  await fill('#add-extension-form', { number: '110', password: 'secret-110x' });
  await submit('#add-extension-form');
  await waitText('#add-extension-form [data-error-for="number"]', 'emergency');
  for (const [number, name] of [['101', 'Anna'], ['102', 'Reception']]) {
    await fill('#add-extension-form', { number, name, password: `secret-${number}x` });
    await submit('#add-extension-form');
    await wait(`#extension-list tr[data-number="${number}"]`);
  }
  {
    const row = await text('#extension-list tr[data-number="101"]');
    assert.ok(row.includes('Anna'), row);
    assert.ok(row.includes('not registered'), row);
  }
  await shot('04-extensions');

  // 4b. A phone registers: the dashboard shows it live (server-sent events). sipp is a
  // required tool here (scripts/test.sh installs sip-tester).
  await go('dashboard', '#dash-registrations');
  await waitText('#dash-live', 'Live');
  {
    const { code, out } = await registerPhone(tmp, pbx.sip, '101', 'secret-101x');
    assert.equal(code, 0, out);
  }
  await waitText('#dash-registrations', '1', 15_000);
  await waitText('#dash-phones', '101', 15_000);
  await shot('04b-dashboard-registered');

  // 4c. A real call between two phones (issue 6), watched on the dashboard: 102 (sipp,
  // call_callee.xml) registers and answers with call_uas.xml; 101 (sipp, call_uac.xml)
  // answers the 407 digest challenge, calls 102, talks 6 s (-d) and hangs up. The call
  // log and its CSV show this call in step 6.
  {
    const callee = await startSipp(tmp, pbx.sip, 'call_callee.xml', '102', 'secret-102x',
      ['-oocsf', path.join(HERE, '..', 'sipp', 'call_uas.xml')], 60_000);
    let calleeEnded = null;
    callee.done.then((r) => { calleeEnded = r; });
    const phones = () => page.locator('#dash-phones tbody tr td:first-child').allInnerTexts();
    await until(async () => calleeEnded !== null || (await phones()).includes('102'),
      'extension 102 listed as registered on the dashboard', 15_000);
    assert.equal(calleeEnded, null, `the callee ended before any call: ${calleeEnded?.out}`);
    const caller = await startSipp(tmp, pbx.sip, 'call_uac.xml', '101', 'secret-101x',
      ['-key', 'callee', '102', '-d', '6000'], 40_000);
    await until(async () => (await text('#dash-calls')) === '1', 'the dashboard counting the call', 15_000);
    await shot('04c-dashboard-call');
    const [callerRun, calleeRun] = await Promise.all([caller.done, callee.done]);
    assert.equal(callerRun.code, 0, callerRun.out);
    assert.equal(calleeRun.code, 0, calleeRun.out);
    await until(async () => (await text('#dash-calls')) === '0', 'the dashboard counting no call', 10_000);
  }

  // 5. A user account linked to extension 101.
  await go('users', '#add-user-form');
  await fill('#add-user-form', { username: 'anna', password: ANNA_PW, role: 'user', extension: '101' });
  await submit('#add-user-form');
  await wait('#user-list tr[data-user="anna"]');
  await shot('05-users');
  // An account added by mistake is deleted (after a confirmation).
  await fill('#add-user-form', { username: 'temp', password: 'temp-password-1', role: 'user', extension: '' });
  await submit('#add-user-form');
  await wait('#user-list tr[data-user="temp"]');
  {
    let confirmed = null;
    page.once('dialog', (d) => { confirmed = d.type(); d.accept(); });
    await click('xpath=//tr[@data-user="temp"]//button[text()="Delete"]');
    await waitText('main .notice', 'temp deleted');
    assert.equal(confirmed, 'confirm', 'a confirmation was asked');
  }
  assert.equal(await count('#user-list tr[data-user="temp"]'), 0);
  assert.equal(await count('xpath=//tr[@data-user="admin"]//button[text()="Delete"]'), 0, 'not yourself');

  // 5b. A ring group; an extension blocked on its page and unblocked on Blocks.
  await go('ring-groups', '#ring-group-form');
  await fill('#ring-group-form', { number: '600', name: 'Office', members: '101, 109' });
  await submit('#ring-group-form');
  await waitText('#ring-group-form [data-error-for="members"]', '109 does not exist');
  await fill('#ring-group-form', { members: '101, 102' });
  await submit('#ring-group-form');
  await waitText('#ring-group-list', '101, 102');
  await shot('05b-ring-groups');
  await go('extensions', '#extension-list tr[data-number="102"]');
  await click('xpath=//tr[@data-number="102"]//button[text()="Block"]');
  await waitText('#extension-list tr[data-number="102"]', 'blocked');
  await go('blocks', '#no-sip-blocks');
  await click('xpath=//td[text()="102"]/..//button[text()="Unblock"]');
  await waitText('main .notice', 'Extension 102 unblocked');
  assert.equal(await count('xpath=//td[text()="102"]'), 0);
  await shot('05c-blocks');

  // 5d. Trunks and numbers: a per-field error, a trunk added (its password never comes
  // back), a number and the emergency caller ID saved.
  await go('trunks', '#trunk-form');
  await wait('#no-trunks');
  await fill('#trunk-form', { name: 'main', registrar: 'bad host', user: '4921112345', password: 'Provider-Secret-77' });
  await submit('#trunk-form');
  await waitText('#trunk-form [data-error-for="registrar"]', 'registrar');
  await fill('#trunk-form', { registrar: '127.0.0.1:9' });
  await submit('#trunk-form');
  await waitText('#trunk-flash', 'main');
  await wait('#trunk-list tr[data-trunk="main"]');
  assert.ok(!(await page.content()).includes('Provider-Secret-77'));
  await fill('#number-form', { number: '+4921112345', destination: '101', callers: '101' });
  await submit('#number-form');
  await wait('#number-list tr[data-number="+4921112345"]');
  await fill('#trunk-settings-form', { 'emergency.caller_id': '112' });
  await submit('#trunk-settings-form');
  await waitText('#trunk-settings-form [data-error-for="emergency.caller_id"]', 'E.164');
  await fill('#trunk-settings-form', {
    'emergency.caller_id': '+4921112345', 'emergency.address': 'Königsallee 1, 40212 Düsseldorf',
  });
  await submit('#trunk-settings-form');
  await waitText('#trunk-flash', 'Emergency and toll-fraud settings saved');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('05d-trunks');

  // 5e. GSM and SMS: the module as the modem task reports it (a rejected PIN with its
  // attempts left), a PIN entered and never shown, the inbox, an SMS sent.
  seedGsm(data);
  await go('gsm', '#gsm-status');
  await waitText('#gsm-status [data-key="pin"]', 'REJECTED');
  await waitText('#gsm-status [data-key="pin-left"]', '2');
  await fill('#pin-form', { pin: '12a' });
  await submit('#pin-form');
  await waitText('#pin-form [data-error-for="pin"]', 'PIN');
  await fill('#pin-form', { pin: '4711' });
  await submit('#pin-form');
  await waitText('#gsm-flash', 'PIN stored');
  await waitText('#gsm-status [data-key="pin"]', 'stored');
  assert.ok(!(await page.content()).includes('4711'));
  await wait('#sms-list tr.unread');
  await click('xpath=//tr[contains(@class, "unread")]//button[text()="Mark read"]');
  await until(async () => (await count('#sms-list tr.unread')) === 0, 'the SMS marked read');
  await fill('#sms-form', { number: '+491701234567', text: 'Die Lieferung ist da.' });
  await submit('#sms-form');
  await waitText('#gsm-flash', 'SMS queued (1 part)');
  await waitText('#sms-list tbody', 'Die Lieferung ist da.');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('05e-gsm');

  // 5f. Firmware: version shown; an upload is refused with the update module's words
  // (this rig runs without an update system), and nothing is left behind.
  await go('firmware', '#fw-form');
  await waitText('#fw-info', 'none');
  {
    const bundle = path.join(tmp, 'test.raucb');
    fs.writeFileSync(bundle, 'not a bundle'.repeat(100));
    await page.locator('#fw-file').setInputFiles(bundle);
    await submit('#fw-form');
    await waitText('#fw-form .form-alert', 'updates are disabled on this system');
    const dataTmp = path.join(data, 'tmp');
    assert.deepEqual(fs.existsSync(dataTmp) ? fs.readdirSync(dataTmp) : [], []);
  }
  await shot('05f-firmware');

  // 5g. Analog ports: live state, pbxctl's checks per field, a change saved.
  seedPorts(data);
  await go('ports', '#port-list tr[data-port="2"]');
  assert.ok((await text('#port-list tr[data-port="2"]')).includes('FAULTY: wrong chip ID'));
  assert.ok((await text('#port-list tr[data-port="1"]')).includes('on hook'));
  await click('#port-list tr[data-port="1"] button');
  await wait('#port-form');
  await fill('#port-form', { number: '12a', name: 'Lager', country: 'US' });
  await submit('#port-form');
  await waitText('#port-form [data-error-for="number"]', 'invalid');
  await fill('#port-form', { number: '31' });
  await submit('#port-form');
  await waitText('#port-flash', 'Port saved: 1');
  await waitText('#port-list tr[data-port="1"]', 'Lager');
  {
    const row = await text('#port-list tr[data-port="1"]');
    assert.ok(row.includes('21 (after restart: 31)'), row);
    assert.ok(row.includes('US'), row);
  }
  await shot('05g-ports');

  // 5h. Certificate: shown; a bad upload is refused under its field; a real one (made
  // with openssl) is installed and shown as uploaded.
  await go('certificate', '#cert-form');
  await waitText('#cert-source', 'generated by the box');
  await fill('#cert-form', { certificate: 'not a certificate', key: 'not a key' });
  await submit('#cert-form');
  await waitText('#cert-form [data-error-for="certificate"]', 'no PEM certificate');
  await shot('05h-certificate-error');
  {
    const crt = path.join(tmp, 'own.crt');
    const key = path.join(tmp, 'own.key');
    const run = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-nodes', '-keyout', key, '-out', crt, '-days', '30', '-subj', '/CN=pbx.example.com'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    await page.locator('#cert-pem-file').setInputFiles(crt);
    await page.locator('#key-pem-file').setInputFiles(key);
    await until(async () => (await page.locator('#key-pem').inputValue()).includes('BEGIN'),
      'the key file read into the form', 5_000);
  }
  await submit('#cert-form');
  await waitText('#cert-flash', 'The certificate is installed.');
  await waitText('#cert-source', 'uploaded');
  await shot('05h-certificate');

  // 6. Call log: all calls for the administrator, filters, CSV download.
  // The real call of step 4c is there already; three seeded records join it.
  seedCalls(data);
  await go('calls', '#cdr-filter');
  await wait('#cdr-table table');
  assert.equal(await count('#cdr-table tbody tr'), 4);
  await select('#cdr-filter [name="disposition"]', 'busy');
  await submit('#cdr-filter');
  await until(async () => (await count('#cdr-table tbody tr')) === 1, 'one busy call');
  assert.ok((await text('#cdr-table tbody tr')).includes('103'));
  await shot('06-call-log-filtered');
  await select('#cdr-filter [name="disposition"]', 'answered');
  await submit('#cdr-filter');
  await until(async () => (await count('#cdr-table tbody tr')) === 2, 'two answered calls');
  await select('#cdr-filter [name="disposition"]', '');
  await submit('#cdr-filter');
  await until(async () => (await count('#cdr-table tbody tr')) === 4, 'all four calls');
  let callAId; let realCallId;
  {
    const rows = await downloadedCsv('#cdr-csv');
    const head = rows[0];
    assert.deepEqual(head.slice(0, 3), ['id', 'call_id', 'start']);
    const seeded = ['call-a', 'call-b', 'call-c'];
    assert.deepEqual(rows.slice(1).map((r) => r[1]).filter((c) => seeded.includes(c)).sort(), seeded);
    callAId = rows.find((r) => r[1] === 'call-a')[0];
    // The call sipp placed: its own row, as call control wrote it.
    const real = rows.slice(1).filter((r) => !seeded.includes(r[1]));
    assert.equal(real.length, 1, JSON.stringify(rows));
    const rec = Object.fromEntries(head.map((k, i) => [k, real[0][i]]));
    assert.equal(rec.caller, '101', JSON.stringify(rec));
    assert.equal(rec.dialled, '102', JSON.stringify(rec));
    assert.equal(rec.destination, '102', JSON.stringify(rec));
    assert.equal(rec.direction, 'internal', JSON.stringify(rec));
    assert.equal(rec.disposition, 'answered', JSON.stringify(rec));
    assert.equal(rec.hangup, 'caller', JSON.stringify(rec));
    assert.ok(rec.answer !== '' && rec.end !== '', JSON.stringify(rec));
    // sipp talked 6 s between its ACK and its BYE: at least that much is billable.
    const talk = Number(rec.billable_secs);
    assert.ok(talk >= 6 && talk <= Number(rec.duration_secs), JSON.stringify(rec));
    realCallId = rec.id;
    // In the table: caller 101 (Anna), dialled and destination 102, answered, its talk time.
    const cells = await page.locator(`#cdr-table tr[data-call="${realCallId}"] td`).allInnerTexts();
    assert.ok(cells[1].startsWith('101'), JSON.stringify(cells));
    assert.deepEqual(cells.slice(2, 4), ['102', '102']);
    assert.equal(cells[6], 'Answered');
    const [mm, ss] = cells[7].split(':').map(Number);
    assert.equal(mm * 60 + ss, talk, JSON.stringify(cells));
  }
  await shot('06a-call-log-real-call');

  // 6b. Alerts (raised by features through the store): most severe first on the
  // dashboard, acknowledged there, gone.
  seedAlerts(data);
  await go('dashboard', '#dash-alerts');
  await wait('#alert-list li');
  assert.deepEqual(
    await page.locator('#alert-list li').evaluateAll((lis) => lis.map((li) => li.dataset.key)),
    ['gsm:no-sim', 'trunk:main:balance']);
  assert.ok((await text('#alert-list li')).includes('Critical'));
  await shot('06b-dashboard-alerts');
  await click('#alert-list li[data-key="trunk:main:balance"] button');
  await until(async () => (await count('#alert-list li')) === 1, 'the acknowledged alert gone');

  // 6c. Backup, a change, a damaged file refused, the restore undoes the change.
  await go('backup', '#restore-form');
  assert.ok((await text('#backup-sealed-note')).includes('only open on this box'));
  await shot('06c-backup');
  const archive = await download('#backup-download', '.pbxbackup');
  const content = fs.readFileSync(archive);
  assert.ok(content.subarray(0, 13).equals(Buffer.from('PBX-BACKUP 1\n')), String(content.subarray(0, 40)));
  await go('extensions', '#add-extension-form');
  await fill('#add-extension-form', { number: '150', password: 'secret-150x' });
  await submit('#add-extension-form');
  await wait('#extension-list tr[data-number="150"]');
  const damaged = path.join(tmp, 'damaged.pbxbackup');
  fs.writeFileSync(damaged, content.subarray(0, content.length - 50));
  await go('backup', '#restore-form');
  await page.locator('#restore-file').setInputFiles(damaged);
  await submit('#restore-form');
  await waitText('#restore-form [data-error-for="file"]', 'damaged or incomplete');
  await shot('06d-restore-damaged');
  await page.locator('#restore-file').setInputFiles(archive);
  await submit('#restore-form');
  await waitText('#restore-done', 'restored');
  await waitText('#restore-restart', 'Restart pbxd');
  await shot('06e-restore-done');
  await login('admin', ADMIN_PW); // a restore ends every session
  await go('extensions', '#extension-list tr[data-number="101"]');
  assert.equal(await count('#extension-list tr[data-number="150"]'), 0);

  // 6f. System page; Diagnostics: a missing field is named, then the bundle downloads.
  await go('system', '#system-table');
  assert.ok((await text('#sys-version')).includes(' (schema '));
  assert.equal(await text('#sys-tz'), 'Europe/Berlin');
  assert.ok((await text('main')).includes('127.0.0.1'));
  await shot('06f-system');
  await go('diagnostics', '#support-form');
  await fill('#support-form', { affected_users: 'anna (101)', steps_tried: 'restarted the phone' });
  await submit('#support-form');
  await waitText('#support-form [data-error-for="error_message"]', 'fill in');
  await fill('#support-form', { error_message: 'no dial tone' });
  {
    const bundle = await download('#support-form button[type="submit"]', '.tar');
    await wait('#support-done');
    const listing = spawnSync('tar', ['-tf', bundle], { encoding: 'utf8' });
    assert.equal(listing.status, 0, listing.stderr);
    const names = listing.stdout.split(/\s+/).filter(Boolean).map((n) => n.split('/').slice(1).join('/')).sort();
    assert.deepEqual(names, ['README.txt', 'alerts.json', 'config.json', 'log.txt',
      'request.json', 'status.json', 'system.json']);
  }
  await shot('06g-diagnostics');

  // 7. Every other admin page renders; no page broke the CSP.
  for (const [p, css] of [['audit', '#audit-table tbody tr'], ['site', '#site-form'],
    ['me', '#my-password-form'], ['dashboard', '#dash-registrations']]) {
    await go(p, css);
    await shot(`07-${p}`);
  }
  // 7b. The administrator in German: a translated label on each page.
  await go('me', '#my-language-form');
  await select('#my-language-form [name="language"]', 'de');
  await submit('#my-language-form');
  await waitText('main .notice', 'Sprache ist gespeichert');
  for (const [p, css, want] of [
    ['extensions', '#add-extension-form button[type="submit"]', 'Nebenstelle hinzufügen'],
    ['ring-groups', '#ring-group-form button[type="submit"]', 'Rufgruppe hinzufügen'],
    ['blocks', '#no-sip-blocks', 'Keine.'],
    ['site', '#site-form label', 'Ländervorwahl'],
    ['ports', '#port-list th', 'Anschluss'],
    ['certificate', '#cert-form button[type="submit"]', 'Zertifikat hochladen']]) {
    await go(p, css);
    await waitText(css, want);
    await shot(`07b-${p}-german`);
  }
  assert.ok((await rowTexts('#nav a')).includes('Analoge Anschlüsse'));
  await go('me', '#my-language-form');
  await select('#my-language-form [name="language"]', 'en');
  await submit('#my-language-form');
  await waitText('main .notice', 'language is saved');
  {
    const entries = logs();
    assert.deepEqual(entries.filter(isCsp), []);
    assert.deepEqual(entries.filter((e) => e.source === 'javascript'), []);
  }
  // The check itself can fail: an inline script is refused and reported.
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true;';
    document.body.append(s);
  });
  await sleep(500);
  assert.equal(await page.evaluate(() => (window.inlineRan === true ? true : null)), null);
  {
    const violations = cspViolations();
    assert.ok(violations.some((v) => v.includes('inline script')), JSON.stringify(violations));
  }

  // 8. The user: own pages only, 403 from admin endpoints, only own calls.
  await click('#logout');
  await wait('#login-form');
  await login('anna', ANNA_PW);
  assert.deepEqual(await rowTexts('#nav a'), ['Call log', 'Phonebook', 'My settings']);
  await page.goto(pbx.url + '/#/extensions');
  await wait('#cdr-filter'); // an admin page falls back to the user's call log
  assert.equal(await count('#add-extension-form'), 0);
  for (const p of ['/api/v1/extensions', '/api/v1/users', '/api/v1/audit', '/api/v1/status']) {
    assert.equal(await fetchStatus(p), 403, p);
  }
  await wait('#cdr-table table');
  {
    const texts = await rowTexts('#cdr-table tbody tr');
    assert.equal(texts.length, 3, JSON.stringify(texts)); // with the real call 101 -> 102
    assert.ok(!texts.some((t) => t.includes('103')), JSON.stringify(texts));
  }
  await shot('08-user-call-log');
  // Notes on own calls: an empty note is refused, a real one is shown and exported.
  const callA = callAId;
  await wait(`#cdr-table tr[data-call="${callA}"]`);
  const cell = `#cdr-table td.note[data-call="${callA}"]`;
  await click(`${cell} button[data-action="note"]`);
  await wait(`${cell} textarea`);
  await submit(`${cell} form`);
  await waitText(`${cell} [data-error-for="note"]`, 'must not be empty');
  await fill(`${cell} form`, { note: 'Call back about the offer, Tuesday' });
  await submit(`${cell} form`);
  await waitText(`${cell} .note-text`, 'Call back about the offer, Tuesday');
  await shot('08b-user-call-note');
  // The personal phonebook: a bad number is named, an entry names calls with 102.
  await go('phonebook', '#contact-add-form');
  await fill('#contact-add-form', { name: 'Bob Berg', numbers: '10x' });
  await submit('#contact-add-form');
  await waitText('#contact-add-form [data-error-for="numbers"]', 'not a phone number');
  await fill('#contact-add-form', { name: 'Bob Berg', numbers: '102, 0211 555 12' });
  await submit('#contact-add-form');
  await wait('#phonebook-list tr[data-contact]');
  assert.ok((await text('#phonebook-list')).includes('0211555'));
  // Each number of an entry has its click-to-dial button.
  assert.deepEqual(
    await page.locator('#phonebook-list button[data-dial]').evaluateAll((bs) => bs.map((b) => b.dataset.dial)),
    ['102', '021155512']);
  {
    const bad = path.join(tmp, 'contacts.csv');
    fs.writeFileSync(bad, 'name,number1\nCarla,0211 7\nNo Number,abc\n');
    await page.locator('#phonebook-import [name="file"]').setInputFiles(bad);
    await submit('#phonebook-import');
    await waitText('#import-errors', 'Line 3');
    fs.writeFileSync(bad, 'name,number1\nCarla,0211 7\n');
    await page.locator('#phonebook-import [name="file"]').setInputFiles(bad);
    await submit('#phonebook-import');
    await waitText('main .notice', 'imported: 1');
  }
  await fill('#phonebook-search', { q: 'carla' });
  await submit('#phonebook-search');
  await waitText('#phonebook-list', 'Carla');
  // The list before the search held Carla too: wait for the search's answer to replace it.
  await until(async () => !(await text('#phonebook-list')).includes('Bob Berg'),
    'the search for carla to leave out Bob Berg');
  assert.ok((await text('#phonebook-list')).includes('Carla'));
  await shot('08c-user-phonebook');
  await go('calls', '#cdr-table table');
  await waitText(`#cdr-table tr[data-call="${callA}"] td.contact`, 'Bob Berg');
  await waitText(`${cell} .note-text`, 'Call back about the offer, Tuesday');
  {
    const rows = await downloadedCsv('#cdr-csv');
    // Her own calls only: the two seeded with 101 and the real one (by its record id).
    assert.equal(rows.length, 4, JSON.stringify(rows));
    assert.deepEqual(rows.slice(1).map((r) => r[1]).filter((c) => ['call-a', 'call-b', 'call-c'].includes(c)).sort(),
      ['call-a', 'call-c']);
    assert.ok(rows.some((r) => r[0] === realCallId), JSON.stringify(rows));
    assert.deepEqual(rows[0].slice(-2), ['note', 'contact']);
    const byCall = Object.fromEntries(rows.slice(1).map((r) => [r[1], r]));
    assert.deepEqual(byCall['call-a'].slice(-2), ['Call back about the offer, Tuesday', 'Bob Berg']);
    assert.deepEqual(byCall['call-c'].slice(-2), ['', 'Bob Berg']);
    // The real call to 102 is anna's too, and 102 is in her phonebook.
    const real = rows.find((r) => r[0] === realCallId);
    assert.deepEqual(real.slice(-2), ['', 'Bob Berg']);
  }
  // Click-to-dial: the other party of each call has a Call button; a blocked number typed
  // into the dial box is refused with its reason (and no phone rings).
  assert.ok((await count('#cdr-table button[data-dial]')) > 0);
  await fill('#dial-box', { number: '0900 123456' });
  await submit('#dial-box');
  await waitText('main .dial-result', 'blocked number range 0900');
  await shot('08d-user-click-to-dial-refused');
  await go('me', '#my-settings-form');
  await click('#my-settings-form [name="dnd"]');
  await submit('#my-settings-form');
  await waitText('main .notice', 'saved');
  await shot('09-user-settings');
  // German for this user: labels, the navigation and field errors follow.
  await select('#my-language-form [name="language"]', 'de');
  await submit('#my-language-form');
  await waitText('main .notice', 'Sprache ist gespeichert');
  assert.deepEqual(await rowTexts('#nav a'), ['Anrufliste', 'Telefonbuch', 'Meine Einstellungen']);
  assert.equal(await page.locator('html').getAttribute('lang'), 'de');
  await fill('#my-password-form', { current_password: ANNA_PW, new_password: 'kurz' });
  await submit('#my-password-form');
  await waitText('#my-password-form [data-error-for="new_password"]', 'kürzer als 10 Zeichen');
  await shot('10-user-settings-german');
  await login('anna', ANNA_PW);
  assert.equal(await text('#logout'), 'Abmelden', 'kept per user');
  await wait('#cdr-table table');
  assert.equal(await text('#cdr-filter button[type="submit"]'), 'Anzeigen');
  assert.ok((await text('#cdr-table')).includes('Nicht gemeldet'));
  await shot('11-user-call-log-german');
  {
    const entries = logs();
    assert.deepEqual(entries.filter((e) => isCsp(e) || e.source === 'javascript'), []);
  }
});
