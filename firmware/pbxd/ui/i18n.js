// UI language per user (English or German): `t(text)` looks the English text up in the
// German dictionary (English is the key, so an untranslated string still reads well).
// Numbers, dates and sizes go through Intl in the user's locale. Server messages stay
// English; `trError` maps the known ones (every page's, tests/web_errors_de.rs checks
// the newer pages' against a real pbxd).

let lang = 'en';

const DE = {
  // shell
  'Log out': 'Abmelden', 'administrator': 'Administrator', 'user': 'Benutzer',
  'Log in': 'Anmelden', 'User name': 'Benutzername', 'Password': 'Passwort',
  'You are logged out.': 'Sie sind abgemeldet.',
  'Your session has ended. Please log in again.': 'Ihre Sitzung ist beendet. Bitte melden Sie sich erneut an.',
  // pages
  'Dashboard': 'Übersicht', 'Extensions': 'Nebenstellen', 'Ring groups': 'Rufgruppen', 'Call log': 'Anrufliste',
  'Blocks': 'Sperren', 'Users': 'Benutzer', 'Audit log': 'Protokoll', 'Site': 'Standort', 'My settings': 'Meine Einstellungen',
  'Backup': 'Sicherung', 'System': 'System', 'Diagnostics': 'Diagnose',
  // trunks and numbers
  'Trunks and numbers': 'Amtsleitungen und Rufnummern', 'Add a trunk': 'Amtsleitung hinzufügen', 'Add trunk': 'Amtsleitung hinzufügen',
  'Save trunk': 'Amtsleitung speichern', 'Change trunk': 'Amtsleitung ändern', 'Remove this trunk?': 'Diese Amtsleitung entfernen?',
  'Registrar': 'Registrar', 'Calls': 'Gespräche', 'Name': 'Name', 'Edit': 'Bearbeiten', 'Remove': 'Entfernen',
  'registered': 'angemeldet', 'registering': 'meldet an', 'auth-failed': 'Anmeldung abgelehnt (Zugangsdaten)', 'forbidden': 'verboten',
  'unreachable': 'nicht erreichbar', 'failed': 'fehlgeschlagen', 'disabled': 'ausgeschaltet', 'no status yet': 'noch kein Zustand', 'until': 'bis',
  'public address': 'öffentliche Adresse', 'Numbers': 'Rufnummern', 'Rings': 'Klingelt bei', 'Caller ID for': 'Absenderkennung für',
  'Default': 'Standard', 'caller ID only': 'nur Absenderkennung', 'all extensions': 'alle Nebenstellen', 'No numbers yet.': 'Noch keine Rufnummern.',
  'Emergency calls and limits': 'Notrufe und Grenzen', 'Save settings': 'Einstellungen speichern', 'Save number': 'Rufnummer speichern',
  'No trunk yet: add the account your provider gave you.': 'Noch keine Amtsleitung: tragen Sie die Zugangsdaten Ihres Anbieters ein.',
  'The password is stored encrypted and never shown.': 'Das Passwort wird verschlüsselt gespeichert und nie angezeigt.',
  'Emergency and toll-fraud settings saved.': 'Notruf- und Missbrauchsschutz-Einstellungen gespeichert.',
  // GSM and SMS
  'GSM and SMS': 'GSM und SMS', 'Module': 'Modul', 'Registration': 'Netzanmeldung', 'Operator': 'Netzbetreiber', 'Signal': 'Signal',
  'PIN attempts left': 'PIN-Versuche übrig', 'PUK attempts left': 'PUK-Versuche übrig', 'Last error': 'Letzter Fehler', 'Reported': 'Gemeldet',
  'stored': 'gespeichert', 'not stored': 'nicht gespeichert', 'REJECTED by the SIM: enter the right PIN': 'von der SIM ABGELEHNT: richtige PIN eingeben',
  'Gateway use': 'Gateway-Nutzung', 'confirmed': 'bestätigt', 'SMS limits': 'SMS-Grenzen', 'minute': 'Minute', 'day': 'Tag',
  'SIM PIN (4 to 8 digits)': 'SIM-PIN (4 bis 8 Ziffern)', 'Store PIN': 'PIN speichern', 'PUK (8 digits)': 'PUK (8 Ziffern)', 'New PIN': 'Neue PIN',
  'Store PUK': 'PUK speichern', 'Send an SMS': 'SMS senden', 'Send SMS': 'SMS senden', 'Text': 'Text', 'SMS queued': 'SMS eingereiht',
  'Mark read': 'Als gelesen markieren', 'Delete this SMS?': 'Diese SMS löschen?', 'SMS deleted.': 'SMS gelöscht.', 'No SMS.': 'Keine SMS.',
  'The PIN is stored encrypted and never shown.': 'Die PIN wird verschlüsselt gespeichert und nie angezeigt.', 'PUK (SIM blocked)': 'PUK (SIM gesperrt)',
  'from': 'von', 'to': 'an', 'read': 'gelesen', 'unread': 'ungelesen', 'characters': 'Zeichen', 'part': 'Teil', 'parts': 'Teile',
  // firmware
  'Firmware': 'Firmware', 'Installed firmware': 'Installierte Firmware', 'Install an update': 'Update installieren', 'Version': 'Version',
  'Update system': 'Update-System', 'Maintenance window': 'Wartungsfenster', 'any time': 'jederzeit', 'Upload and install': 'Hochladen und installieren',
  'Update bundle (.raucb)': 'Update-Paket (.raucb)', 'Choose a bundle file first.': 'Bitte zuerst eine Paketdatei wählen.', 'Uploading…': 'Lade hoch…',
  'Installation failed:': 'Installation fehlgeschlagen:', 'Installed; it boots at the next restart.': 'Installiert; wird beim nächsten Neustart gestartet.',
  'Slots unavailable:': 'Slots nicht verfügbar:', 'No installation from this page since pbxd started.': 'Seit dem Start von pbxd keine Installation über diese Seite.',
  'The signature and the board are checked before anything is written.': 'Signatur und Gerät werden geprüft, bevor etwas geschrieben wird.',
  'Install even while calls are up or outside the maintenance window (never during an emergency call)': 'Auch während Gesprächen oder außerhalb des Wartungsfensters installieren (nie während eines Notrufs)',
  // dashboard
  'Registered phones': 'Angemeldete Telefone', 'Active calls': 'Aktive Gespräche', 'Uptime': 'Laufzeit',
  'Trunk': 'Amtsleitung', 'Analog ports': 'Analoge Anschlüsse', 'GSM': 'GSM', 'not configured': 'nicht eingerichtet',
  'Alerts': 'Meldungen', 'No open alerts: everything is working.': 'Keine offenen Meldungen: alles funktioniert.',
  'Critical': 'Kritisch', 'Warning': 'Warnung', 'Information': 'Hinweis', 'since': 'seit',
  'Acknowledge': 'Bestätigen', 'Alert acknowledged.': 'Meldung bestätigt.',
  'Extension': 'Nebenstelle', 'Transport': 'Transport', 'Address': 'Adresse', 'Phone': 'Telefon', 'Expires in': 'Läuft ab in',
  'No phone is registered.': 'Kein Telefon ist angemeldet.', 'Connecting…': 'Verbinde…',
  'Connection lost; retrying…': 'Verbindung verloren; neuer Versuch…', 'Live · updated': 'Live · aktualisiert',
  'Alert history': 'Verlauf der Meldungen', 'open': 'offen', 'cleared': 'erledigt',
  // users and own settings
  'Delete': 'Löschen', 'Language': 'Sprache', 'English': 'English', 'German': 'Deutsch',
  'Save language': 'Sprache speichern', 'Your language is saved.': 'Ihre Sprache ist gespeichert.',
  'Web password': 'Web-Passwort', 'Current password': 'Aktuelles Passwort',
  'New password (at least 10 characters)': 'Neues Passwort (mindestens 10 Zeichen)', 'Change password': 'Passwort ändern',
  'Do not disturb': 'Nicht stören', 'Forward always to': 'Immer weiterleiten an', 'Forward when busy to': 'Bei besetzt weiterleiten an',
  'Forward on no answer to': 'Bei Nichtmelden weiterleiten an', 'No-answer time (s)': 'Zeit bis Nichtmelden (s)', 'Save': 'Speichern',
  'Your call settings are saved.': 'Ihre Anrufeinstellungen sind gespeichert.',
  'No extension is linked to your account.': 'Ihrem Konto ist keine Nebenstelle zugeordnet.',
  'Your password is changed. Other sessions of your account were ended.': 'Ihr Passwort ist geändert. Andere Sitzungen Ihres Kontos wurden beendet.',
  'Severity': 'Dringlichkeit', 'Message': 'Meldung', 'State': 'Zustand', 'Download a backup': 'Sicherung herunterladen',
  // users and audit log
  'blocked': 'gesperrt', 'active': 'aktiv', 'you': 'Sie', 'Revoke admin': 'Adminrechte entziehen', 'Make admin': 'Zum Admin machen',
  'Unblock': 'Entsperren', 'Block': 'Sperren', 'User': 'Benutzer', 'Role': 'Rolle', 'Actions': 'Aktionen',
  'Password (at least 10 characters)': 'Passwort (mindestens 10 Zeichen)', 'Administrator': 'Administrator', 'Own extension': 'Eigene Nebenstelle',
  'none': 'keine', 'Add user': 'Benutzer anlegen', 'Add a user': 'Benutzer anlegen', 'Older entries': 'Ältere Einträge',
  'When': 'Wann', 'Who': 'Wer', 'What': 'Was', 'Details': 'Details', 'From': 'Von',
  // call log
  'From (date)': 'Von (Datum)', 'To (date, inclusive)': 'Bis (Datum, einschließlich)', 'Number': 'Nummer', 'Result': 'Ergebnis',
  'Show': 'Anzeigen', 'Download as CSV': 'Als CSV herunterladen', 'Caller': 'Anrufer', 'Dialled': 'Gewählt', 'Destination': 'Ziel',
  'Direction': 'Richtung', 'Talk time': 'Gesprächsdauer', 'Reason': 'Grund', 'No calls match.': 'Keine passenden Anrufe.',
  'Newer': 'Neuere', 'Older': 'Ältere', 'Calls of your extension': 'Anrufe Ihrer Nebenstelle',
  'No extension is linked to your account, so there are no calls to show.': 'Ihrem Konto ist keine Nebenstelle zugeordnet, daher gibt es keine Anrufe.',
  'internal': 'intern', 'outbound': 'abgehend', 'inbound': 'ankommend', 'forwarded': 'weitergeleitet', 'Any result': 'Alle Ergebnisse', 'Answered': 'Angenommen',
  'Busy': 'Besetzt', 'No answer': 'Nicht gemeldet', 'Cancelled': 'Abgebrochen', 'Failed': 'Fehlgeschlagen', 'Blocked': 'Gesperrt',
  // notes and phonebook
  // click-to-dial
  'Call': 'Anrufen', 'Call {number}': '{number} anrufen', 'Number to call': 'Rufnummer',
  'Call from your phone {ext}': 'Von Ihrem Telefon {ext} anrufen',
  'Your phone {ext} is ringing: pick it up to call {number}.': 'Ihr Telefon {ext} klingelt: Heben Sie ab, um {number} anzurufen.',
  '{number} was not called:': '{number} wurde nicht angerufen:',
  'Phonebook': 'Telefonbuch', 'Note': 'Notiz', 'Add note': 'Notiz hinzufügen', 'Edit note': 'Notiz ändern', 'Save note': 'Notiz speichern',
  'Delete note': 'Notiz löschen', 'Note saved.': 'Notiz gespeichert.', 'Note deleted.': 'Notiz gelöscht.', 'Cancel': 'Abbrechen',
  'Search name or number': 'Name oder Nummer suchen', 'Search': 'Suchen',
  'Delete this entry?': 'Diesen Eintrag löschen?', 'Entry deleted.': 'Eintrag gelöscht.', 'Entry saved.': 'Eintrag gespeichert.',
  'Entry added.': 'Eintrag hinzugefügt.', 'No entry matches.': 'Kein Eintrag passt.', 'Your phonebook is empty.': 'Ihr Telefonbuch ist leer.',
  'Numbers (separate with commas)': 'Rufnummern (durch Kommas getrennt)', 'Save entry': 'Eintrag speichern', 'Add entry': 'Eintrag hinzufügen',
  'Change entry': 'Eintrag ändern', 'Add an entry': 'Eintrag hinzufügen', 'Import and export': 'Import und Export', 'CSV file': 'CSV-Datei',
  'Import': 'Importieren', 'Choose a CSV file.': 'Wählen Sie eine CSV-Datei.', 'Entries imported': 'Einträge importiert', 'Line': 'Zeile',
  'CSV lines: name, then up to five numbers. A header line is skipped. A file with a bad line is refused whole.':
    'CSV-Zeilen: Name, dann bis zu fünf Rufnummern. Eine Kopfzeile wird übersprungen. Eine Datei mit einer fehlerhaften Zeile wird ganz abgelehnt.',
  // backup
  'Download backup': 'Sicherung herunterladen', 'Restore': 'Wiederherstellen', 'Backup file': 'Sicherungsdatei',
  'Restore from another box': 'Sicherung eines anderen Geräts wiederherstellen',
  'Restore backup': 'Sicherung wiederherstellen',
  'Choose a backup file first.': 'Wählen Sie zuerst eine Sicherungsdatei.',
  'The configuration was restored. Everyone must log in again.': 'Die Konfiguration wurde wiederhergestellt. Alle müssen sich neu anmelden.',
  'Restart pbxd (or the box) now: the running telephony picks up the restored configuration only after a restart.': 'Starten Sie jetzt pbxd (oder das Gerät) neu: Die laufende Telefonie übernimmt die wiederhergestellte Konfiguration erst nach einem Neustart.',
  'These secrets came from another box and must be entered again:': 'Diese Geheimnisse stammen von einem anderen Gerät und müssen neu eingegeben werden:',
  'backup-what': 'Die Sicherung enthält die Konfiguration: Nebenstellen (mit Passwort-Hashes), Rufgruppen, Einstellungen, Standort, Web-Benutzer (mit Passwort-Hashes) und Sperren. Keine Anrufliste und keine Anmeldungen von Telefonen. Bewahren Sie die Datei vertraulich auf.',
  'backup-sealed': 'Verschlüsselte Geheimnisse (Passwörter der Amtsleitung, SIM-PIN) lassen sich nur auf diesem Gerät öffnen. Auf einem anderen Gerät werden sie verworfen und müssen neu eingegeben werden.',
  'restore-what': 'Die Wiederherstellung prüft die Datei vollständig und ersetzt dann die gesamte Konfiguration in einem Schritt. Beschädigte Dateien und Dateien neuerer Firmware werden abgelehnt.',
  // system and diagnostics
  'Version': 'Version', 'Time': 'Uhrzeit', 'Time zone': 'Zeitzone', 'Country code': 'Ländervorwahl',
  'Tone set': 'Töne', 'Network addresses': 'Netzwerkadressen', 'Data partition': 'Datenpartition',
  'Device': 'Gerät', 'free of': 'frei von', 'Interface': 'Schnittstelle',
  'Support request': 'Supportanfrage',
  'support-what': 'Das Supportpaket enthält Versionen, die Konfiguration ohne Geheimnisse, die letzten Protokollzeilen, den Status, die Meldungen und Ihre Angaben. Senden Sie es an den Support Ihres Anbieters.',
  'Affected users': 'Betroffene Benutzer', 'When did it happen?': 'Wann ist es passiert?', 'Error message': 'Fehlermeldung',
  'Browser': 'Browser', 'Package or plan (optional)': 'Paket oder Tarif (optional)', 'Steps already tried': 'Bereits versuchte Schritte',
  'Download support bundle': 'Supportpaket herunterladen', 'The support bundle is downloaded.': 'Das Supportpaket wurde heruntergeladen.',
  // first-start wizard and site
  'Welcome. Create the administrator account. The one-time set-up token is in the device log and in the file setup-token in the data directory.': 'Willkommen. Legen Sie das Administratorkonto an. Das einmalige Einrichtungs-Token steht im Geräteprotokoll und in der Datei setup-token im Datenverzeichnis.',
  'Set-up token': 'Einrichtungs-Token', 'Administrator user name': 'Benutzername des Administrators',
  'Repeat password': 'Passwort wiederholen', 'Create administrator': 'Administrator anlegen', 'the passwords differ': 'die Passwörter sind verschieden',
  'First start: administrator': 'Erster Start: Administrator', 'First start: site': 'Erster Start: Standort', 'Save and finish': 'Speichern und abschließen',
  'Country code (49 for Germany)': 'Ländervorwahl (49 für Deutschland)', 'Area code without 0 (e.g. 211)': 'Ortsvorwahl ohne 0 (z. B. 211)',
  'Emergency address: street and number': 'Notrufadresse: Straße und Hausnummer', 'Postal code': 'Postleitzahl', 'City': 'Ort',
  'Floor, room (optional)': 'Etage, Raum (optional)',
  'The emergency address is sent with calls to 110 and 112: enter where this box and its phones are.': 'Die Notrufadresse wird bei Anrufen an 110 und 112 übermittelt: Geben Sie an, wo dieses Gerät und seine Telefone stehen.',
  'Trunk, analog ports and GSM are set up on their own pages once those features are available.': 'Amtsleitung, analoge Anschlüsse und GSM richten Sie auf eigenen Seiten ein.',
  'Trunk, analog ports and GSM are set up on their own pages.': 'Amtsleitung, analoge Anschlüsse und GSM richten Sie auf eigenen Seiten ein.',
  'Site settings saved.': 'Standorteinstellungen gespeichert.',
  // extensions
  'Add an extension': 'Nebenstelle hinzufügen', 'Add extension': 'Nebenstelle hinzufügen', 'Number (2-6 digits)': 'Nummer (2 bis 6 Ziffern)',
  'SIP password (at least 8 characters)': 'SIP-Passwort (mindestens 8 Zeichen)', 'New SIP password (at least 8 characters)': 'Neues SIP-Passwort (mindestens 8 Zeichen)',
  'No extensions yet.': 'Noch keine Nebenstellen.', '{n} registered': '{n} angemeldet', 'not registered': 'nicht angemeldet',
  'password must be set again': 'Passwort muss neu gesetzt werden', 'Save name': 'Name speichern', 'Set password': 'Passwort setzen',
  'Call settings': 'Anrufeinstellungen', 'Save call settings': 'Anrufeinstellungen speichern', 'Outbound calls': 'Abgehende Anrufe',
  'Internal only': 'Nur intern', 'Local': 'Ortsnetz', 'National': 'National', 'International': 'International',
  'Hide caller ID (CLIR)': 'Rufnummer unterdrücken (CLIR)', 'Pickup group (1-99, empty for none)': 'Übernahmegruppe (1–99, leer für keine)',
  'Extension {n}': 'Nebenstelle {n}', 'Extension {n} added.': 'Nebenstelle {n} hinzugefügt.', 'Extension {n} saved.': 'Nebenstelle {n} gespeichert.',
  'Extension {n} blocked.': 'Nebenstelle {n} gesperrt.', 'Extension {n} unblocked.': 'Nebenstelle {n} entsperrt.',
  'Extension {n} removed.': 'Nebenstelle {n} entfernt.', 'Remove extension {n}?': 'Nebenstelle {n} entfernen?',
  'Password of extension {n} changed.': 'Passwort der Nebenstelle {n} geändert.', 'Call settings of {n} saved.': 'Anrufeinstellungen von {n} gespeichert.',
  'Member of ring groups {list}': 'Mitglied der Rufgruppen {list}',
  // ring groups
  'Add a ring group': 'Rufgruppe hinzufügen', 'Add ring group': 'Rufgruppe hinzufügen', 'Save ring group': 'Rufgruppe speichern',
  'Strategy': 'Strategie', 'All at once': 'Alle gleichzeitig', 'One after another': 'Nacheinander', 'Ring time (s)': 'Klingeldauer (s)',
  'Ring time': 'Klingeldauer', 'Members (e.g. 101, 102)': 'Mitglieder (z. B. 101, 102)', 'Members': 'Mitglieder',
  'On no answer, go to': 'Bei Nichtmelden weiter an', 'No ring groups yet.': 'Noch keine Rufgruppen.',
  'Ring group {n}': 'Rufgruppe {n}', 'Ring group {n} added.': 'Rufgruppe {n} hinzugefügt.', 'Ring group {n} saved.': 'Rufgruppe {n} gespeichert.',
  'Ring group {n} removed.': 'Rufgruppe {n} entfernt.', 'Remove ring group {n}?': 'Rufgruppe {n} entfernen?',
  // blocks
  'Addresses blocked after failed SIP logins': 'Nach fehlgeschlagenen SIP-Anmeldungen gesperrte Adressen', 'Remaining': 'Verbleibend',
  'Lift': 'Aufheben', 'None.': 'Keine.', 'Blocked extensions': 'Gesperrte Nebenstellen', 'Blocked users': 'Gesperrte Benutzer',
  'None. Block one on the Extensions page.': 'Keine. Sperren Sie eine auf der Seite Nebenstellen.',
  'None. Block one on the Users page.': 'Keine. Sperren Sie einen auf der Seite Benutzer.',
  'Block on {ip} lifted.': 'Sperre von {ip} aufgehoben.', 'User {u} unblocked.': 'Benutzer {u} entsperrt.',
  // analog ports
  'Port': 'Anschluss', 'Country': 'Land', 'Caller ID': 'Rufnummernanzeige', 'Call waiting': 'Anklopfen', 'on': 'ein', 'off': 'aus',
  'Change port': 'Anschluss ändern', 'after restart:': 'nach Neustart:', 'Save port': 'Anschluss speichern', 'Port saved:': 'Anschluss gespeichert:', 'Cancel': 'Abbrechen',
  'Extension number (empty: default)': 'Nebenstellennummer (leer: Standard)', 'Name (caller ID name)': 'Name (für die Rufnummernanzeige)',
  'Country (tones and ringing)': 'Land (Töne und Klingeln)', 'default': 'Standard', "the country's": 'die des Landes',
  'cid-off': 'aus', 'cid-v23': 'FSK V.23 (ETSI)', 'cid-bell202': 'FSK Bell 202 (USA)', 'cid-dtmf': 'DTMF',
  'port-number-note': 'Land, Rufnummernanzeige und Anklopfen gelten nach wenigen Sekunden; eine neue Nummer erst nach einem Neustart von pbxd.',
  'on hook': 'aufgelegt', 'off hook': 'abgehoben', 'line feed': 'Speisung', 'FAULTY': 'GESTÖRT', 'idle': 'frei', 'dial tone': 'Wählton',
  'dialling': 'wählt', 'ringing': 'klingelt', 'ringback': 'Freiton', 'connected': 'verbunden', 'busy': 'besetzt', 'forward': 'normal', 'reverse': 'umgepolt',
  'no status (pbxd has not reported this port)': 'kein Zustand (pbxd hat diesen Anschluss nicht gemeldet)',
  'No analog ports: pbxd runs without port hardware.': 'Keine analogen Anschlüsse: pbxd läuft ohne Anschluss-Hardware.',
  // certificate
  'Certificate': 'Zertifikat', 'Source': 'Herkunft', 'Valid from': 'Gültig ab', 'Valid until': 'Gültig bis', 'Chain': 'Kette',
  'SHA-256 fingerprint': 'SHA-256-Fingerabdruck', 'uploaded': 'hochgeladen', 'generated by the box': 'vom Gerät erzeugt',
  'Upload your own certificate': 'Eigenes Zertifikat hochladen', 'Certificate chain (PEM, server certificate first)': 'Zertifikatskette (PEM, Serverzertifikat zuerst)',
  'Private key (PEM)': 'Privater Schlüssel (PEM)', 'Upload certificate': 'Zertifikat hochladen', 'The certificate is installed.': 'Das Zertifikat ist installiert.',
  'New connections use it now; SIP over TLS after a restart of pbxd.': 'Neue Verbindungen verwenden es sofort, SIP über TLS nach einem Neustart von pbxd.',
  'Generated certificate': 'Erzeugtes Zertifikat', 'Back to a generated certificate': 'Zurück zu einem erzeugten Zertifikat',
  'Replace the certificate with a new one generated by the box?': 'Das Zertifikat durch ein neues, vom Gerät erzeugtes ersetzen?',
  'A new certificate was generated.': 'Ein neues Zertifikat wurde erzeugt.',
  'cert-what': 'Laden Sie das Zertifikat Ihrer eigenen Zertifizierungsstelle mit dem privaten Schlüssel hoch. Es wird geprüft (lesbar, Schlüssel passt, gültig), bevor etwas ersetzt wird.',
  'cert-generated-what': 'Das Gerät erzeugt ein neues selbstsigniertes Zertifikat; Browser warnen dann wieder, bis Sie es bestätigen.',
};

// Long texts have a short key; their English wording is here.
const EN = {
  'cid-off': 'off', 'cid-v23': 'FSK V.23 (ETSI)', 'cid-bell202': 'FSK Bell 202 (US)', 'cid-dtmf': 'DTMF',
  'port-number-note': 'Country, caller ID and call waiting apply within seconds; a new number only after pbxd restarts.',
  'cert-what': "Upload the certificate from your own certificate authority with its private key. It is checked (readable, key matches, valid now) before anything is replaced.",
  'cert-generated-what': 'The box generates a new self-signed certificate; browsers warn again until you accept it.',
  'backup-what': 'The backup holds the configuration: extensions (with password hashes), ring groups, settings, site, web users (with password hashes) and blocks. No call records and no phone registrations. Keep the file private.',
  'backup-sealed': 'Encrypted secrets (trunk passwords, SIM PIN) only open on this box. Restored on another box they are dropped and must be entered again.',
  'restore-what': 'A restore checks the whole file first, then replaces the entire configuration in one step. Damaged files and files from newer firmware are refused.',
  'support-what': "The support bundle holds versions, the configuration without secrets, the latest log lines, the status, the alerts and your answers below. Send it to your provider's support.",
};

const DICTS = { en: EN, de: DE };

// Known server field messages (English) and their German wording.
const ERRORS_DE = [
  [/^blocked number range (\S+):/, 'Gesperrter Rufnummernbereich (Schutz vor Missbrauch).'],
  [/^not allowed for outbound class/, 'Für Ihre Nebenstelle nicht freigegeben (Berechtigungsklasse).'],
  [/^no phone of extension .* is reachable/, 'Kein Telefon Ihrer Nebenstelle ist erreichbar. Ist es angemeldet?'],
  [/^your account has no extension/, 'Ihrem Konto ist keine Nebenstelle zugeordnet; ein Administrator kann eine zuordnen.'],
  [/^a number may contain only digits/, 'Eine Rufnummer darf nur Ziffern, ein führendes + und Trennzeichen enthalten.'],
  [/^enter a number to call/, 'Geben Sie eine Rufnummer ein.'],
  [/^external calls locked \(toll-fraud protection\)/, 'Externe Anrufe sind gesperrt (Schutz vor Gebührenbetrug); ein Administrator muss sie freigeben.'],
  [/^please fill in this field$/, 'Bitte füllen Sie dieses Feld aus.'],
  [/^invalid password: shorter than 10 characters$/, 'Das Passwort ist kürzer als 10 Zeichen.'],
  [/^invalid password: must not be the user name$/, 'Das Passwort darf nicht der Benutzername sein.'],
  [/^the current password is wrong$/, 'Das aktuelle Passwort ist falsch.'],
  [/^wrong user name or password$/, 'Benutzername oder Passwort falsch.'],
  [/^invalid note: must not be empty/, 'Die Notiz darf nicht leer sein (löschen Sie sie stattdessen).'],
  [/^invalid note: at most 500/, 'Die Notiz darf höchstens 500 Zeichen lang sein.'],
  [/^invalid name: must not be empty$/, 'Bitte geben Sie einen Namen ein.'],
  [/^invalid number: .* is not a phone number/, 'Das ist keine Rufnummer (2 bis 32 Ziffern, * oder #, optional führendes +).'],
  [/^invalid numbers: at least one number/, 'Mindestens eine Rufnummer ist nötig.'],
  [/^invalid numbers: at most 5/, 'Höchstens 5 Rufnummern pro Eintrag.'],
  [/^invalid language/, 'Unbekannte Sprache.'],
  [/damaged or incomplete/, 'Die Sicherung ist beschädigt oder unvollständig. Verwenden Sie eine andere Kopie.'],
  [/not a PBX configuration backup/, 'Diese Datei ist keine Sicherung der Telefonanlage.'],
  [/made on another box/, 'Die Sicherung stammt von einem anderen Gerät. Setzen Sie das Häkchen, wenn das beabsichtigt ist.'],
  [/from a newer firmware/, 'Die Sicherung stammt von einer neueren Firmware. Aktualisieren Sie zuerst die Firmware.'],
  [/format version .* is not supported/, 'Dieses Sicherungsformat wird nicht unterstützt.'],
  [/you cannot delete your own account/, 'Sie können Ihr eigenes Konto nicht löschen.'],
  [/last enabled administrator/, 'Der letzte aktive Administrator kann nicht gelöscht werden.'],
  // Analog ports (a function gets the match: numbers and dates are kept).
  [/^(\S+) is not a port number \(1 to (\d+)\)/, (m) => `${m[1]} ist keine Portnummer (1 bis ${m[2]}).`],
  [/^unknown country/, 'Unbekanntes Land (eines von DE, AT, CH, GB, FR, NL, US).'],
  [/^unknown caller-ID mode/, 'Unbekanntes Verfahren der Rufnummernanzeige (off, bell202, v23 oder dtmf).'],
  [/^invalid extension number .*: only digits/, 'Die Rufnummer darf nur Ziffern 0–9 enthalten.'],
  [/^invalid extension number .*: must have 2 to 6 digits/, 'Die Rufnummer muss 2 bis 6 Ziffern haben.'],
  [/^invalid extension number .*: must not start with 0/, 'Die Rufnummer darf nicht mit 0 beginnen (Amtsholung).'],
  [/^invalid extension number .*: overlaps an emergency number/, 'Die Rufnummer überschneidet sich mit einer Notrufnummer (110, 112, 124124).'],
  [/^number (\S+) is already /, (m) => `Die Rufnummer ${m[1]} ist bereits vergeben.`],
  [/^invalid name: (longer than|at most) 64 characters/, 'Der Name darf höchstens 64 Zeichen lang sein.'],
  [/^invalid name: (contains|must not contain) control characters/, 'Der Name darf keine Steuerzeichen enthalten.'],
  // HTTPS certificate upload
  [/^no PEM certificate found/, 'Kein Zertifikat im PEM-Format gefunden (erwartet: -----BEGIN CERTIFICATE-----).'],
  [/^the certificate PEM is damaged/, 'Das Zertifikat (PEM) ist beschädigt.'],
  [/^no PEM private key found/, 'Kein privater Schlüssel im PEM-Format gefunden (PKCS#8, RSA oder EC).'],
  [/^the private key cannot be used/, 'Dieser private Schlüssel kann nicht verwendet werden.'],
  [/^the private key does not belong to the first certificate/, 'Der private Schlüssel gehört nicht zum ersten Zertifikat.'],
  [/^the first certificate is not a well-formed X\.509/, 'Das erste Zertifikat ist kein gültiges X.509-Zertifikat.'],
  [/^the certificate expired on (.+)$/, (m) => `Das Zertifikat ist am ${m[1]} abgelaufen.`],
  [/^the certificate is not valid before (.+)$/, (m) => `Das Zertifikat ist erst ab ${m[1]} gültig.`],
  // Phonebook and call notes
  [/^invalid phonebook: at most (\d+) entries/, (m) => `Das Telefonbuch fasst höchstens ${m[1]} Einträge.`],
  [/^at most (\d+) entries$/, (m) => `Das Telefonbuch fasst höchstens ${m[1]} Einträge.`],
  [/^nothing imported; bad lines:/, 'Nichts importiert: die Datei hat fehlerhafte Zeilen.'],
  [/^the file holds no entries/, 'Die Datei enthält keine Einträge.'],
  [/^the file is larger than 512 KiB/, 'Die Datei ist größer als 512 KiB.'],
  [/^search text: at most 64 characters/, 'Der Suchtext darf höchstens 64 Zeichen lang sein.'],
  [/^phonebook entry .* does not exist/, 'Dieser Telefonbucheintrag existiert nicht (mehr).'],
  [/^call \S+ does not exist/, 'Dieser Anruf existiert nicht.'],
  [/^call \S+ has no note/, 'Dieser Anruf hat keine Notiz.'],
  [/^number may hold only digits/, 'Die Rufnummer darf nur Ziffern, + * # und Trennzeichen enthalten (höchstens 32).'],
  // Click-to-dial
  [/^a number has at most (\d+) digits/, (m) => `Eine Rufnummer hat höchstens ${m[1]} Ziffern.`],
  [/^click-to-dial is not available/, 'Wählen per Klick ist nicht verfügbar: die Telefonie läuft nicht.'],
  [/^calls to this number are not allowed/, 'Anrufe zu dieser Rufnummer sind nicht erlaubt.'],
  [/^not a number that can be dialled/, 'Diese Rufnummer kann nicht gewählt werden.'],
  [/^no such extension or number/, 'Diese Nebenstelle oder Rufnummer gibt es nicht.'],
  [/^busy$/, 'Besetzt.'],
  [/^the call cannot be placed now/, 'Der Anruf kann jetzt nicht aufgebaut werden.'],
  // The dial plan's and call control's refusals, as click-to-dial passes them on.
  [/^number incomplete$/, 'Die Rufnummer ist unvollständig.'],
  [/^unknown number$/, 'Diese Rufnummer ist unbekannt.'],
  [/^invalid number: number too long: E\.164 numbers have at most 15 digits/, 'Ungültige Rufnummer: zu lang (E.164-Rufnummern haben höchstens 15 Ziffern).'],
  [/^invalid number: number too long/, 'Ungültige Rufnummer: zu lang.'],
  [/^invalid number: only digits, \+, \* and # can be dialled/, 'Ungültige Rufnummer: nur Ziffern, +, * und # können gewählt werden.'],
  [/^invalid number: \* and # only in feature codes/, 'Ungültige Rufnummer: * und # nur in Kennziffern, + nur am Anfang.'],
  [/^invalid number: a CLIR code must be followed by a number/, 'Ungültige Rufnummer: nach der Kennziffer zur Rufnummernunterdrückung muss eine Rufnummer folgen.'],
  [/^limit of (\d+) external calls per user reached/, (m) => `Die Grenze von ${m[1]} gleichzeitigen externen Anrufen pro Benutzer ist erreicht.`],
  [/^all (\d+) channels of trunk (\S+) busy/, (m) => `Alle ${m[1]} Kanäle des Anschlusses ${m[2]} sind belegt.`],
  [/^all trunk channels busy/, 'Alle Kanäle des Anschlusses sind belegt.'],
  [/^GSM gateway use not confirmed/, 'Die Nutzung des GSM-Moduls als Gateway ist nicht bestätigt.'],
  [/^extension (\S+) does not exist or is disabled/, (m) => `Die Nebenstelle ${m[1]} gibt es nicht oder sie ist deaktiviert.`],
  [/^do not disturb$/, 'Bitte nicht stören ist eingeschaltet.'],
  [/^too many failed attempts; try again in (\d+) seconds/, (m) => `Zu viele Versuche; bitte in ${m[1]} Sekunden erneut versuchen.`],
];

export function setLanguage(l) {
  lang = DICTS[l] ? l : 'en';
  document.documentElement.lang = lang;
}

export function language() { return lang; }

export function locale() { return lang === 'de' ? 'de-DE' : 'en-GB'; }

export function t(text) { return DICTS[lang][text] || text; }

// `t` with `{name}` placeholders filled from `vars` (after translation, so the word
// order can differ).
export function tf(text, vars) { return t(text).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)); }

export function trError(message) {
  if (lang !== 'de' || !message) return message;
  for (const [re, de] of ERRORS_DE) {
    const m = message.match(re);
    if (m) return typeof de === 'function' ? de(m) : de;
  }
  return message;
}

export function fmtNumber(n, opts) { return new Intl.NumberFormat(locale(), opts).format(n); }

export function fmtDateTime(ms) {
  if (ms === null || ms === undefined) return '';
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(ms));
}

export function fmtBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = Number(bytes) || 0, i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${fmtNumber(v, { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}
