"""The web UI in a real browser: Debian's chromium (headless) driven by Selenium through
Debian's chromedriver, against a real pbxd with a fresh data directory.

One scenario, in order, as an installer and then an office user meet the box:
first-boot wizard with the set-up token, site settings (a per-field error first),
dashboard with live status, add an extension and see it listed, add a user, call log
with filters and CSV download, no Content-Security-Policy violation on any page (and a
deliberate inline script is refused, which proves the check can fail), then the user:
no admin pages, 403 from admin endpoints, only own calls, own CSV.

Environment: PBXD_BIN (the pbxd binary), WEB_ARTIFACTS (screenshots and logs go there).
Run: scripts/test.d/web-ui.sh
"""

import csv
import io
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

PBXD = os.environ.get("PBXD_BIN", "target/debug/pbxd")
ARTIFACTS = os.environ.get("WEB_ARTIFACTS", "web-artifacts")
ADMIN_PW = "admin-password-1"
ANNA_PW = "anna-password-1"


class Pbxd:
    """A pbxd on free loopback ports with its own data directory."""

    def __init__(self, data):
        self.data = data
        self.log = []
        self.proc = subprocess.Popen(
            [PBXD, "--data-dir", data, "--sip-listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0",
             # No emulated ports or modem: the emulated SIM's PIN alert would mix in.
             "--hardware", "none"],
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PBXD_LOG": "info"})
        deadline = time.time() + 30
        ready = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if "ready:" in line:
                ready = line
                break
        if ready is None:
            self.stop()
            raise RuntimeError("pbxd did not get ready:\n" + "".join(self.log))
        self.https = int(re.search(r" https=[^ ]*:(\d+)", ready).group(1))
        self.sip = int(re.search(r" sip=[^ ]*:(\d+)", ready).group(1))
        self.url = f"https://127.0.0.1:{self.https}"
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def register_phone(tmp, sip_port, user, password):
    """A real SIP REGISTER with digest auth by sipp (tests/sipp/register.xml)."""
    inf = os.path.join(tmp, "users.csv")
    with open(inf, "w") as f:
        f.write(f"SEQUENTIAL\n{user};[authentication username={user} password={password}]\n")
    scenario = os.path.join(os.path.dirname(__file__), "..", "sipp", "register.xml")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        local_port = probe.getsockname()[1]
    run = subprocess.run(
        ["sipp", "-sf", scenario, "-inf", inf, "-m", "1", "-t", "u1", "-i", "127.0.0.1",
         "-p", str(local_port),
         "-nostdin", "-timeout", "20s", "-timeout_error", f"127.0.0.1:{sip_port}"],
        cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return run.returncode, run.stdout[-2000:] + run.stderr[-2000:]


def seed_calls(data):
    """Call records as call control writes them (the store's call_records table):
    anna's extension 101 in two calls, a third call between others."""
    db = sqlite3.connect(os.path.join(data, "pbx.db"), timeout=10)
    now = int(time.time() * 1000)
    rows = [
        ("call-a", "101", "102", "102", now - 3_600_000, now - 3_590_000, now - 3_500_000, "answered"),
        ("call-b", "103", "104", "104", now - 1_800_000, None, now - 1_790_000, "busy"),
        ("call-c", "102", "101", "101", now - 600_000, None, now - 580_000, "no_answer"),
    ]
    with db:
        for call_id, caller, dialled, dest, start, answer, end, disp in rows:
            db.execute(
                "INSERT INTO call_records (call_id, caller, dialled, destination, direction,"
                " start_ms, answer_ms, end_ms, disposition) VALUES (?,?,?,?,'internal',?,?,?,?)",
                (call_id, caller, dialled, dest, start, answer, end, disp))
    db.close()


def seed_gsm(data):
    """The modem task's report (a PIN the SIM refused, 2 attempts left) and a received SMS."""
    db = sqlite3.connect(os.path.join(data, "pbx.db"), timeout=10)
    now = int(time.time())
    with db:
        db.execute("INSERT OR REPLACE INTO gsm_status (id, sim, registration, operator, signal_dbm,"
                   " pin_left, puk_left, last_error, updated_at)"
                   " VALUES (1, 'PIN needed', 'not registered', NULL, -71, 2, 10,"
                   " 'the SIM rejected the PIN', ?)", (now,))
        db.execute("UPDATE gsm_settings SET pin_sealed = 'v1:00', pin_rejected = 1 WHERE id = 1")
        db.execute("INSERT INTO sms (direction, peer, at, text, parts, read, status)"
                   " VALUES ('in', '+491701234567', ?, 'Lieferung kommt um 10 Uhr', 1, 0, 'received')",
                   (now - 60,))
    db.close()


def seed_alerts(data):
    """Alerts as the trunk and GSM features raise them (the store's alerts table)."""
    db = sqlite3.connect(os.path.join(data, "pbx.db"), timeout=10)
    now = int(time.time())
    with db:
        for key, sev, msg in [
            ("trunk:main:balance", "warning",
             "Outgoing calls fail: the provider reports the prepaid balance is used up."),
            ("gsm:no-sim", "critical",
             "No SIM in the GSM module: no mobile fallback for emergency calls."),
        ]:
            db.execute("INSERT INTO alerts (key, severity, message, raised_at, updated_at)"
                       " VALUES (?,?,?,?,?)", (key, sev, msg, now, now))
    db.close()


def seed_ports(data):
    """Two analog ports as pbxd reports them (port_status): port 1 idle, port 2 faulty."""
    db = sqlite3.connect(os.path.join(data, "pbx.db"), timeout=10)
    now = int(time.time())
    with db:
        db.execute("INSERT OR REPLACE INTO port_status (port, number, hook, linefeed, call, faulty,"
                   " updated_at) VALUES (1, '21', 'on', 'forward', 'idle', NULL, ?)", (now,))
        db.execute("INSERT OR REPLACE INTO port_status (port, number, hook, linefeed, call, faulty,"
                   " updated_at) VALUES (2, '22', 'on', 'open', 'idle',"
                   " 'wrong chip ID 0x00 (expected 0xc3)', ?)", (now,))
    db.close()


def is_csp(entry):
    """A browser console entry reporting a Content-Security-Policy violation."""
    m = entry["message"]
    return "Content Security Policy" in m or "Refused to" in m


class WebUi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.tmp = tempfile.mkdtemp(prefix="pbx-web-")
        cls.data = os.path.join(cls.tmp, "data")
        cls.downloads = os.path.join(cls.tmp, "downloads")
        os.makedirs(cls.downloads)
        cls.pbx = Pbxd(cls.data)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--ignore-certificate-errors", "--window-size=1280,900",
                  f"--user-data-dir={os.path.join(cls.tmp, 'profile')}"]:
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        opts.add_experimental_option("prefs", {
            "download.default_directory": cls.downloads,
            "download.prompt_for_download": False,
        })
        cls.driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
        cls.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                   {"behavior": "allow", "downloadPath": cls.downloads})
        cls.console = []

    @classmethod
    def tearDownClass(cls):
        try:
            cls.driver.quit()
        finally:
            cls.pbx.stop()
            with open(os.path.join(ARTIFACTS, "pbxd.log"), "w") as f:
                f.write("".join(cls.pbx.log))
            with open(os.path.join(ARTIFACTS, "console.log"), "w") as f:
                f.write("\n".join(str(e) for e in cls.console))
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ------------------------------------------------------------------

    def logs(self):
        entries = self.driver.get_log("browser")
        self.console.extend(entries)
        return entries

    def csp_violations(self):
        return [e["message"] for e in self.logs() if is_csp(e)]

    def wait(self, css, timeout=10):
        return WebDriverWait(self.driver, timeout).until(
            EC.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def wait_text(self, css, text, timeout=10):
        try:
            WebDriverWait(self.driver, timeout).until(
                EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
        except TimeoutException:
            els = self.driver.find_elements(By.CSS_SELECTOR, css)
            got = els[0].text if els else "<missing>"
            self.fail(f"{css}: wanted {text!r}, got {got!r}")

    def fill(self, form, values):
        for name, value in values.items():
            el = self.driver.find_element(By.CSS_SELECTOR, f'{form} [name="{name}"]')
            if el.tag_name == "select":
                Select(el).select_by_value(value)
            else:
                el.clear()
                el.send_keys(value)

    def submit(self, form):
        self.driver.find_element(By.CSS_SELECTOR, f'{form} button[type="submit"]').click()

    def field_error(self, form, name):
        return self.driver.find_element(
            By.CSS_SELECTOR, f'{form} [data-error-for="{name}"]').text

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(ARTIFACTS, f"{name}.png"))

    def go(self, page, ready_css):
        self.driver.get(f"{self.pbx.url}/#/{page}")
        self.wait(ready_css)

    def fetch_status(self, path):
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {credentials: 'same-origin'})"
            ".then(r => done(r.status), e => done(String(e)));", path)

    def downloaded_csv(self):
        """The CSV the browser saved (removed after reading, so the next is fresh)."""
        deadline = time.time() + 10
        while time.time() < deadline:
            names = os.listdir(self.downloads)
            done = [n for n in names if n.endswith(".csv")]
            if done and not any(n.endswith(".crdownload") for n in names):
                path = os.path.join(self.downloads, done[0])
                with open(path, newline="") as f:
                    text = f.read()
                os.remove(path)
                return list(csv.reader(io.StringIO(text)))
            time.sleep(0.2)
        self.fail(f"no CSV downloaded into {self.downloads}: {os.listdir(self.downloads)}")

    def downloaded(self, suffix):
        """Path of the file with this suffix the browser saved (moved aside once read)."""
        deadline = time.time() + 10
        while time.time() < deadline:
            names = os.listdir(self.downloads)
            done = [n for n in names if n.endswith(suffix)]
            if done and not any(n.endswith(".crdownload") for n in names):
                src = os.path.join(self.downloads, done[0])
                dst = os.path.join(self.tmp, done[0])
                os.replace(src, dst)
                return dst
            time.sleep(0.2)
        self.fail(f"no {suffix} downloaded into {self.downloads}: {os.listdir(self.downloads)}")

    def login(self, user, password):
        self.driver.delete_all_cookies()
        self.driver.get(self.pbx.url + "/")
        self.wait("#login-form")
        self.fill("#login-form", {"username": user, "password": password})
        self.submit("#login-form")
        self.wait("#nav a")

    # ---- the scenario --------------------------------------------------------------

    def test_installer_then_user(self):
        d = self.driver
        # 0. Before any account exists the wizard follows the browser's language: German
        # for a browser set to German (navigator.language, set through the DevTools
        # protocol), then English again.
        script = d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
            "source": "Object.defineProperty(navigator, 'language', {get: () => 'de-DE'});"})
        d.get(self.pbx.url + "/")
        self.wait_text('#setup-form button[type="submit"]', "Administrator anlegen")
        self.assertIn("Einrichtungs-Token", d.find_element(By.ID, "setup-form").text)
        self.shot("01a-wizard-account-german")
        d.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                          {"identifier": script["identifier"]})
        # 1. First boot: the wizard asks for the token and creates the administrator.
        d.get(self.pbx.url + "/")
        self.wait_text('#setup-form button[type="submit"]', "Create administrator")
        self.wait("#setup-form")
        self.shot("01-wizard-account")
        with open(os.path.join(self.data, "setup-token")) as f:
            token = f.read().strip()
        self.fill("#setup-form", {"token": "0" * 64, "username": "admin",
                                  "password": ADMIN_PW, "password2": ADMIN_PW})
        self.submit("#setup-form")
        self.wait_text('#setup-form [data-error-for="token"]', "wrong set-up token")
        self.fill("#setup-form", {"token": token})
        self.submit("#setup-form")

        # 2. Site step: a bad area code is named at its field, then the site is saved.
        self.wait("#site-form")
        self.fill("#site-form", {"area_code": "0211", "emergency_address.street": "Königsallee 1",
                                 "emergency_address.postal_code": "40212",
                                 "emergency_address.city": "Düsseldorf"})
        Select(d.find_element(By.CSS_SELECTOR, '#site-form [name="time_zone"]')) \
            .select_by_value("Europe/Berlin")
        self.submit("#site-form")
        self.wait_text('#site-form [data-error-for="area_code"]', "without the leading 0")
        self.shot("02-wizard-site-error")
        self.fill("#site-form", {"area_code": "211"})
        self.submit("#site-form")

        # 3. Dashboard: live figures by server-sent events; unbuilt parts say so.
        self.wait_text("#dash-live", "Live")
        self.assertEqual(d.find_element(By.ID, "dash-registrations").text, "0")
        self.assertEqual(d.find_element(By.ID, "dash-trunk").text, "not configured")
        self.assertEqual(d.find_element(By.ID, "dash-gsm").text, "not configured")
        self.assertFalse(os.path.exists(os.path.join(self.data, "setup-token")))
        self.shot("03-dashboard")

        # 4. Extensions: a refused number is explained at its field; a good one is listed.
        self.go("extensions", "#add-extension-form")
        self.fill("#add-extension-form", {"number": "110", "password": "secret-110x"})
        self.submit("#add-extension-form")
        self.wait_text('#add-extension-form [data-error-for="number"]', "emergency")
        for number, name in [("101", "Anna"), ("102", "Reception")]:
            self.fill("#add-extension-form", {"number": number, "name": name,
                                              "password": f"secret-{number}x"})
            self.submit("#add-extension-form")
            self.wait(f'#extension-list tr[data-number="{number}"]')
        row = d.find_element(By.CSS_SELECTOR, '#extension-list tr[data-number="101"]').text
        self.assertIn("Anna", row)
        self.assertIn("not registered", row)
        self.shot("04-extensions")

        # 4b. A phone registers: the dashboard shows it live (server-sent events).
        if shutil.which("sipp"):
            self.go("dashboard", "#dash-registrations")
            self.wait_text("#dash-live", "Live")
            code, out = register_phone(self.tmp, self.pbx.sip, "101", "secret-101x")
            self.assertEqual(code, 0, out)
            self.wait_text("#dash-registrations", "1", timeout=15)
            self.wait_text("#dash-phones", "101", timeout=15)
            self.shot("04b-dashboard-registered")
        else:
            print("note: sipp missing: live registration on the dashboard not checked")

        # 5. A user account linked to extension 101.
        self.go("users", "#add-user-form")
        self.fill("#add-user-form", {"username": "anna", "password": ANNA_PW,
                                     "role": "user", "extension": "101"})
        self.submit("#add-user-form")
        self.wait('#user-list tr[data-user="anna"]')
        self.shot("05-users")
        # An account added by mistake is deleted (after a confirmation).
        self.fill("#add-user-form", {"username": "temp", "password": "temp-password-1",
                                     "role": "user", "extension": ""})
        self.submit("#add-user-form")
        self.wait('#user-list tr[data-user="temp"]')
        d.find_element(By.XPATH, '//tr[@data-user="temp"]//button[text()="Delete"]').click()
        WebDriverWait(d, 5).until(EC.alert_is_present())
        d.switch_to.alert.accept()
        self.wait_text("main .notice", "temp deleted")
        self.assertEqual(d.find_elements(By.CSS_SELECTOR, '#user-list tr[data-user="temp"]'), [])
        self.assertEqual(d.find_elements(
            By.XPATH, '//tr[@data-user="admin"]//button[text()="Delete"]'), [], "not yourself")

        # 5b. A ring group; an extension blocked on its page and unblocked on Blocks.
        self.go("ring-groups", "#ring-group-form")
        self.fill("#ring-group-form", {"number": "600", "name": "Office",
                                       "members": "101, 109"})
        self.submit("#ring-group-form")
        self.wait_text('#ring-group-form [data-error-for="members"]', "109 does not exist")
        self.fill("#ring-group-form", {"members": "101, 102"})
        self.submit("#ring-group-form")
        self.wait_text("#ring-group-list", "101, 102")
        self.shot("05b-ring-groups")
        self.go("extensions", '#extension-list tr[data-number="102"]')
        row = '#extension-list tr[data-number="102"]'
        d.find_element(By.XPATH, '//tr[@data-number="102"]//button[text()="Block"]').click()
        self.wait_text(row, "blocked")
        self.go("blocks", "#no-sip-blocks")
        d.find_element(By.XPATH, '//td[text()="102"]/..//button[text()="Unblock"]').click()
        self.wait_text("main .notice", "Extension 102 unblocked")
        self.assertEqual(d.find_elements(By.XPATH, '//td[text()="102"]'), [])
        self.shot("05c-blocks")

        # 5d. Trunks and numbers: a per-field error, a trunk added (its password never
        # comes back), a number and the emergency caller ID saved.
        self.go("trunks", "#trunk-form")
        self.wait("#no-trunks")
        self.fill("#trunk-form", {"name": "main", "registrar": "bad host", "user": "4921112345",
                                  "password": "Provider-Secret-77"})
        self.submit("#trunk-form")
        self.wait_text('#trunk-form [data-error-for="registrar"]', "registrar")
        self.fill("#trunk-form", {"registrar": "127.0.0.1:9"})
        self.submit("#trunk-form")
        self.wait_text("#trunk-flash", "main")
        self.wait('#trunk-list tr[data-trunk="main"]')
        self.assertNotIn("Provider-Secret-77", d.page_source)
        self.fill("#number-form", {"number": "+4921112345", "destination": "101", "callers": "101"})
        self.submit("#number-form")
        self.wait('#number-list tr[data-number="+4921112345"]')
        self.fill("#trunk-settings-form", {"emergency.caller_id": "112"})
        self.submit("#trunk-settings-form")
        self.wait_text('#trunk-settings-form [data-error-for="emergency.caller_id"]', "E.164")
        self.fill("#trunk-settings-form", {"emergency.caller_id": "+4921112345",
                                           "emergency.address": "Königsallee 1, 40212 Düsseldorf"})
        self.submit("#trunk-settings-form")
        self.wait_text("#trunk-flash", "Emergency and toll-fraud settings saved")
        d.execute_script("window.scrollTo(0, 0)")
        self.shot("05d-trunks")

        # 5e. GSM and SMS: the module as the modem task reports it (a rejected PIN with
        # its attempts left), a PIN entered and never shown, the inbox, an SMS sent.
        seed_gsm(self.data)
        self.go("gsm", "#gsm-status")
        self.wait_text('#gsm-status [data-key="pin"]', "REJECTED")
        self.wait_text('#gsm-status [data-key="pin-left"]', "2")
        self.fill("#pin-form", {"pin": "12a"})
        self.submit("#pin-form")
        self.wait_text('#pin-form [data-error-for="pin"]', "PIN")
        self.fill("#pin-form", {"pin": "4711"})
        self.submit("#pin-form")
        self.wait_text("#gsm-flash", "PIN stored")
        self.wait_text('#gsm-status [data-key="pin"]', "stored")
        self.assertNotIn("4711", d.page_source)
        self.wait('#sms-list tr.unread')
        d.find_element(By.XPATH, '//tr[contains(@class, "unread")]//button[text()="Mark read"]').click()
        WebDriverWait(d, 10).until(
            lambda drv: not drv.find_elements(By.CSS_SELECTOR, "#sms-list tr.unread"))
        self.fill("#sms-form", {"number": "+491701234567", "text": "Die Lieferung ist da."})
        self.submit("#sms-form")
        self.wait_text("#gsm-flash", "SMS queued (1 part)")
        self.wait_text("#sms-list tbody", "Die Lieferung ist da.")
        d.execute_script("window.scrollTo(0, 0)")
        self.shot("05e-gsm")

        # 5f. Firmware: version shown; an upload is refused with the update module's
        # words (this rig runs without an update system), and nothing is left behind.
        self.go("firmware", "#fw-form")
        self.wait_text("#fw-info", "none")
        bundle = os.path.join(self.tmp, "test.raucb")
        with open(bundle, "wb") as f:
            f.write(b"not a bundle" * 100)
        d.find_element(By.CSS_SELECTOR, "#fw-file").send_keys(bundle)
        self.submit("#fw-form")
        self.wait_text("#fw-form .form-alert", "updates are disabled on this system")
        tmp = os.path.join(self.data, "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])
        self.shot("05f-firmware")

        # 5g. Analog ports: live state, pbxctl's checks per field, a change saved.
        seed_ports(self.data)
        self.go("ports", '#port-list tr[data-port="2"]')
        self.assertIn("FAULTY: wrong chip ID", d.find_element(By.CSS_SELECTOR, '#port-list tr[data-port="2"]').text)
        self.assertIn("on hook", d.find_element(By.CSS_SELECTOR, '#port-list tr[data-port="1"]').text)
        d.find_element(By.CSS_SELECTOR, '#port-list tr[data-port="1"] button').click()
        self.wait("#port-form")
        self.fill("#port-form", {"number": "12a", "name": "Lager", "country": "US"})
        self.submit("#port-form")
        self.wait_text('#port-form [data-error-for="number"]', "invalid")
        self.fill("#port-form", {"number": "31"})
        self.submit("#port-form")
        self.wait_text("#port-flash", "Port saved: 1")
        self.wait_text('#port-list tr[data-port="1"]', "Lager")
        self.assertIn("21 (after restart: 31)", d.find_element(By.CSS_SELECTOR, '#port-list tr[data-port="1"]').text)
        self.assertIn("US", d.find_element(By.CSS_SELECTOR, '#port-list tr[data-port="1"]').text)
        self.shot("05g-ports")

        # 5h. Certificate: shown; a bad upload is refused under its field; a real one
        # (made with openssl) is installed and shown as uploaded.
        self.go("certificate", "#cert-form")
        self.wait_text("#cert-source", "generated by the box")
        self.fill("#cert-form", {"certificate": "not a certificate", "key": "not a key"})
        self.submit("#cert-form")
        self.wait_text('#cert-form [data-error-for="certificate"]', "no PEM certificate")
        self.shot("05h-certificate-error")
        crt, key = os.path.join(self.tmp, "own.crt"), os.path.join(self.tmp, "own.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=pbx.example.com"],
                       check=True, capture_output=True)
        d.find_element(By.ID, "cert-pem-file").send_keys(crt)
        d.find_element(By.ID, "key-pem-file").send_keys(key)
        WebDriverWait(d, 5).until(lambda _: "BEGIN" in d.find_element(By.ID, "key-pem").get_attribute("value"))
        self.submit("#cert-form")
        self.wait_text("#cert-flash", "The certificate is installed.")
        self.wait_text("#cert-source", "uploaded")
        self.shot("05h-certificate")

        # 6. Call log: all calls for the administrator, filters, CSV download.
        seed_calls(self.data)
        self.go("calls", "#cdr-filter")
        self.wait("#cdr-table table")
        self.assertEqual(len(d.find_elements(By.CSS_SELECTOR, "#cdr-table tbody tr")), 3)
        Select(d.find_element(By.CSS_SELECTOR, '#cdr-filter [name="disposition"]')) \
            .select_by_value("busy")
        self.submit("#cdr-filter")
        WebDriverWait(d, 10).until(lambda drv: len(
            drv.find_elements(By.CSS_SELECTOR, "#cdr-table tbody tr")) == 1)
        self.assertIn("103", d.find_element(By.CSS_SELECTOR, "#cdr-table tbody tr").text)
        self.shot("06-call-log-filtered")
        Select(d.find_element(By.CSS_SELECTOR, '#cdr-filter [name="disposition"]')) \
            .select_by_value("")
        self.submit("#cdr-filter")
        WebDriverWait(d, 10).until(lambda drv: len(
            drv.find_elements(By.CSS_SELECTOR, "#cdr-table tbody tr")) == 3)
        d.find_element(By.ID, "cdr-csv").click()
        rows = self.downloaded_csv()
        self.assertEqual(rows[0][:3], ["id", "call_id", "start"])
        self.assertEqual(sorted(r[1] for r in rows[1:]), ["call-a", "call-b", "call-c"])

        # 6b. Alerts (raised by features through the store): most severe first on the
        # dashboard, acknowledged there, gone.
        seed_alerts(self.data)
        self.go("dashboard", "#dash-alerts")
        self.wait("#alert-list li")
        keys = [li.get_attribute("data-key")
                for li in d.find_elements(By.CSS_SELECTOR, "#alert-list li")]
        self.assertEqual(keys, ["gsm:no-sim", "trunk:main:balance"])
        self.assertIn("Critical", d.find_element(By.CSS_SELECTOR, "#alert-list li").text)
        self.shot("06b-dashboard-alerts")
        d.find_element(By.CSS_SELECTOR, '#alert-list li[data-key="trunk:main:balance"] button').click()
        WebDriverWait(d, 10).until(lambda drv: len(
            drv.find_elements(By.CSS_SELECTOR, "#alert-list li")) == 1)

        # 6c. Backup, a change, a damaged file refused, the restore undoes the change.
        self.go("backup", "#restore-form")
        self.assertIn("only open on this box", d.find_element(By.ID, "backup-sealed-note").text)
        self.shot("06c-backup")
        d.find_element(By.ID, "backup-download").click()
        archive = self.downloaded(".pbxbackup")
        with open(archive, "rb") as f:
            content = f.read()
        self.assertTrue(content.startswith(b"PBX-BACKUP 1\n"), content[:40])
        self.go("extensions", "#add-extension-form")
        self.fill("#add-extension-form", {"number": "150", "password": "secret-150x"})
        self.submit("#add-extension-form")
        self.wait('#extension-list tr[data-number="150"]')
        damaged = os.path.join(self.tmp, "damaged.pbxbackup")
        with open(damaged, "wb") as f:
            f.write(content[:-50])
        self.go("backup", "#restore-form")
        d.find_element(By.ID, "restore-file").send_keys(damaged)
        self.submit("#restore-form")
        self.wait_text('#restore-form [data-error-for="file"]', "damaged or incomplete")
        self.shot("06d-restore-damaged")
        d.find_element(By.ID, "restore-file").send_keys(archive)
        self.submit("#restore-form")
        self.wait_text("#restore-done", "restored")
        self.wait_text("#restore-restart", "Restart pbxd")
        self.shot("06e-restore-done")
        self.login("admin", ADMIN_PW)  # a restore ends every session
        self.go("extensions", '#extension-list tr[data-number="101"]')
        self.assertEqual(d.find_elements(By.CSS_SELECTOR, '#extension-list tr[data-number="150"]'), [])

        # 6f. System page; Diagnostics: a missing field is named, then the bundle downloads.
        self.go("system", "#system-table")
        self.assertIn(" (schema ", d.find_element(By.ID, "sys-version").text)
        self.assertEqual(d.find_element(By.ID, "sys-tz").text, "Europe/Berlin")
        self.assertIn("127.0.0.1", d.find_element(By.TAG_NAME, "main").text)
        self.shot("06f-system")
        self.go("diagnostics", "#support-form")
        self.fill("#support-form", {"affected_users": "anna (101)",
                                    "steps_tried": "restarted the phone"})
        self.submit("#support-form")
        self.wait_text('#support-form [data-error-for="error_message"]', "fill in")
        self.fill("#support-form", {"error_message": "no dial tone"})
        self.submit("#support-form")
        self.wait("#support-done")
        bundle = self.downloaded(".tar")
        listing = subprocess.run(["tar", "-tf", bundle], capture_output=True, text=True, check=True)
        names = sorted(n.split("/", 1)[1] for n in listing.stdout.split())
        self.assertEqual(names, ["README.txt", "alerts.json", "config.json", "log.txt",
                                 "request.json", "status.json", "system.json"])
        self.shot("06g-diagnostics")

        # 7. Every other admin page renders; no page broke the CSP.
        for page, css in [("audit", "#audit-table tbody tr"), ("site", "#site-form"),
                          ("me", "#my-password-form"), ("dashboard", "#dash-registrations")]:
            self.go(page, css)
            self.shot(f"07-{page}")
        # 7b. The administrator in German: a translated label on each page.
        self.go("me", "#my-language-form")
        Select(d.find_element(By.CSS_SELECTOR, '#my-language-form [name="language"]')) \
            .select_by_value("de")
        self.submit("#my-language-form")
        self.wait_text("main .notice", "Sprache ist gespeichert")
        for page, css, text in [
                ("extensions", '#add-extension-form button[type="submit"]', "Nebenstelle hinzufügen"),
                ("ring-groups", '#ring-group-form button[type="submit"]', "Rufgruppe hinzufügen"),
                ("blocks", "#no-sip-blocks", "Keine."),
                ("site", '#site-form label', "Ländervorwahl"),
                ("ports", "#port-list th", "Anschluss"),
                ("certificate", '#cert-form button[type="submit"]', "Zertifikat hochladen")]:
            self.go(page, css)
            self.wait_text(css, text)
            self.shot(f"07b-{page}-german")
        self.assertIn("Analoge Anschlüsse", [a.text for a in d.find_elements(By.CSS_SELECTOR, "#nav a")])
        self.go("me", "#my-language-form")
        Select(d.find_element(By.CSS_SELECTOR, '#my-language-form [name="language"]')) \
            .select_by_value("en")
        self.submit("#my-language-form")
        self.wait_text("main .notice", "language is saved")
        entries = self.logs()
        self.assertEqual([e for e in entries if is_csp(e)], [])
        self.assertEqual([e for e in entries if e.get("source") == "javascript"], [])
        # The check itself can fail: an inline script is refused and reported.
        d.execute_script(
            "const s = document.createElement('script');"
            "s.textContent = 'window.inlineRan = true;';"
            "document.body.append(s);")
        time.sleep(0.5)
        self.assertIsNone(d.execute_script("return window.inlineRan === true ? true : null;"))
        violations = self.csp_violations()
        self.assertTrue(any("inline script" in v for v in violations), violations)

        # 8. The user: own pages only, 403 from admin endpoints, only own calls.
        d.find_element(By.ID, "logout").click()
        self.wait("#login-form")
        self.login("anna", ANNA_PW)
        nav = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#nav a")]
        self.assertEqual(nav, ["Call log", "Phonebook", "My settings"])
        d.get(self.pbx.url + "/#/extensions")
        self.wait("#cdr-filter")  # an admin page falls back to the user's call log
        self.assertEqual(d.find_elements(By.ID, "add-extension-form"), [])
        for path in ["/api/v1/extensions", "/api/v1/users", "/api/v1/audit", "/api/v1/status"]:
            self.assertEqual(self.fetch_status(path), 403, path)
        self.wait("#cdr-table table")
        texts = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#cdr-table tbody tr")]
        self.assertEqual(len(texts), 2, texts)
        self.assertFalse(any("103" in t for t in texts), texts)
        self.shot("08-user-call-log")
        # Notes on own calls: an empty note is refused, a real one is shown and exported.
        call_a = d.execute_script(
            "return [...document.querySelectorAll('#cdr-table tbody tr')]"
            ".find(r => r.textContent.includes('102') && r.cells[2].textContent === '102')"
            ".dataset.call;")
        cell = f'#cdr-table td.note[data-call="{call_a}"]'
        d.find_element(By.CSS_SELECTOR, f'{cell} button[data-action="note"]').click()
        self.wait(f"{cell} textarea")
        self.submit(f"{cell} form")
        self.wait_text(f'{cell} [data-error-for="note"]', "must not be empty")
        self.fill(f"{cell} form", {"note": "Call back about the offer, Tuesday"})
        self.submit(f"{cell} form")
        self.wait_text(f"{cell} .note-text", "Call back about the offer, Tuesday")
        self.shot("08b-user-call-note")
        # The personal phonebook: a bad number is named, an entry names calls with 102.
        self.go("phonebook", "#contact-add-form")
        self.fill("#contact-add-form", {"name": "Bob Berg", "numbers": "10x"})
        self.submit("#contact-add-form")
        self.wait_text('#contact-add-form [data-error-for="numbers"]', "not a phone number")
        self.fill("#contact-add-form", {"name": "Bob Berg", "numbers": "102, 0211 555 12"})
        self.submit("#contact-add-form")
        self.wait('#phonebook-list tr[data-contact]')
        self.assertIn("0211555", d.find_element(By.ID, "phonebook-list").text)
        # Each number of an entry has its click-to-dial button.
        self.assertEqual(
            [b.get_attribute("data-dial") for b in
             d.find_elements(By.CSS_SELECTOR, "#phonebook-list button[data-dial]")],
            ["102", "021155512"])
        bad = os.path.join(self.tmp, "contacts.csv")
        with open(bad, "w") as f:
            f.write("name,number1\nCarla,0211 7\nNo Number,abc\n")
        d.find_element(By.CSS_SELECTOR, '#phonebook-import [name="file"]').send_keys(bad)
        self.submit("#phonebook-import")
        self.wait_text("#import-errors", "Line 3")
        with open(bad, "w") as f:
            f.write("name,number1\nCarla,0211 7\n")
        d.find_element(By.CSS_SELECTOR, '#phonebook-import [name="file"]').send_keys(bad)
        self.submit("#phonebook-import")
        self.wait_text("main .notice", "imported: 1")
        self.fill("#phonebook-search", {"q": "carla"})
        self.submit("#phonebook-search")
        self.wait_text("#phonebook-list", "Carla")
        self.assertNotIn("Bob Berg", d.find_element(By.ID, "phonebook-list").text)
        self.shot("08c-user-phonebook")
        self.go("calls", "#cdr-table table")
        self.wait_text(f'#cdr-table tr[data-call="{call_a}"] td.contact', "Bob Berg")
        self.wait_text(f"{cell} .note-text", "Call back about the offer, Tuesday")
        d.find_element(By.ID, "cdr-csv").click()
        rows = self.downloaded_csv()
        self.assertEqual(sorted(r[1] for r in rows[1:]), ["call-a", "call-c"])
        self.assertEqual(rows[0][-2:], ["note", "contact"])
        by_call = {r[1]: r for r in rows[1:]}
        self.assertEqual(by_call["call-a"][-2:], ["Call back about the offer, Tuesday", "Bob Berg"])
        self.assertEqual(by_call["call-c"][-2:], ["", "Bob Berg"])
        # Click-to-dial: the other party of each call has a Call button; a blocked number
        # typed into the dial box is refused with its reason (and no phone rings).
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, "#cdr-table button[data-dial]"))
        self.fill("#dial-box", {"number": "0900 123456"})
        self.submit("#dial-box")
        self.wait_text("main .dial-result", "blocked number range 0900")
        self.shot("08d-user-click-to-dial-refused")
        self.go("me", "#my-settings-form")
        d.find_element(By.CSS_SELECTOR, '#my-settings-form [name="dnd"]').click()
        self.submit("#my-settings-form")
        self.wait_text("main .notice", "saved")
        self.shot("09-user-settings")
        # German for this user: labels, the navigation and field errors follow.
        Select(d.find_element(By.CSS_SELECTOR, '#my-language-form [name="language"]')) \
            .select_by_value("de")
        self.submit("#my-language-form")
        self.wait_text("main .notice", "Sprache ist gespeichert")
        nav = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#nav a")]
        self.assertEqual(nav, ["Anrufliste", "Telefonbuch", "Meine Einstellungen"])
        self.assertEqual(d.find_element(By.TAG_NAME, "html").get_attribute("lang"), "de")
        self.fill("#my-password-form", {"current_password": ANNA_PW, "new_password": "kurz"})
        self.submit("#my-password-form")
        self.wait_text('#my-password-form [data-error-for="new_password"]', "kürzer als 10 Zeichen")
        self.shot("10-user-settings-german")
        self.login("anna", ANNA_PW)
        self.assertEqual(d.find_element(By.ID, "logout").text, "Abmelden", "kept per user")
        self.wait("#cdr-table table")
        self.assertEqual(d.find_element(By.CSS_SELECTOR, '#cdr-filter button[type="submit"]').text,
                         "Anzeigen")
        self.assertIn("Nicht gemeldet", d.find_element(By.ID, "cdr-table").text)
        self.shot("11-user-call-log-german")
        entries = self.logs()
        self.assertEqual([e for e in entries if is_csp(e) or e.get("source") == "javascript"], [])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"web-ui: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or not result.testsRun else 0)
