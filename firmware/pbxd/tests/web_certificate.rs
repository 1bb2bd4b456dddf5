//! The HTTPS certificate page's API against a real pbxd: administrators only, CSRF,
//! each bad upload refused with its reason and nothing replaced, a chain made here with
//! rcgen (a test CA and a leaf) served to the next TLS client without a restart and
//! kept over a restart, and the way back to a generated certificate. Audited.

mod web_support;

use std::io::{Read, Write};
use std::net::TcpStream;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use web_support::{admin_and_user, audit_text, client_trusting, send, start, Daemon, Req, ROOT_PW};

struct Chain {
    ca_pem: String,
    leaf_pem: String,
    key_pem: String,
}

/// A CA and a leaf for `pbx.example.com` it signed, valid until `until_year`.
fn chain(until_year: i32) -> Chain {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Test Office CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut leaf =
        rcgen::CertificateParams::new(vec!["pbx.example.com".to_owned()]).expect("leaf params");
    leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(until_year, 1, 1);
    let leaf = leaf.signed_by(&key, &issuer).expect("leaf");
    Chain {
        ca_pem: ca_cert.pem(),
        leaf_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The certificate the server at `port` presents to a client trusting `root_pem` and
/// asking for `name`, or why the handshake failed.
fn served(port: u16, root_pem: &str, name: &str) -> Result<Vec<u8>, String> {
    let name = ServerName::try_from(name.to_owned()).expect("name");
    let conn = rustls::ClientConnection::new(client_trusting(root_pem), name).expect("client");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    if !out.starts_with(b"HTTP/1.1 200") {
        return Err(format!("no answer: {}", String::from_utf8_lossy(&out)));
    }
    let certs = tls.conn.peer_certificates().ok_or("no peer certificate")?;
    Ok(certs[0].as_ref().to_vec())
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .as_ref()
        .to_vec()
}

fn device_crt(d: &Daemon) -> String {
    std::fs::read_to_string(d.data.join("tls/device.crt")).expect("device.crt")
}

#[test]
fn an_uploaded_chain_is_checked_served_at_once_kept_and_can_be_replaced_by_a_generated_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path());
    let (root, anna) = admin_and_user(&d);
    let good = chain(2090);
    let upload =
        json!({"certificate": format!("{}{}", good.leaf_pem, good.ca_pem), "key": good.key_pem});

    // Roles and CSRF.
    let (status, _) = send(&d, &anna, "GET", "/api/v1/certificate", None);
    assert_eq!(status, 403);
    let (status, _) = send(
        &d,
        &anna,
        "PUT",
        "/api/v1/certificate",
        Some(upload.clone()),
    );
    assert_eq!(status, 403);
    let (status, _) = send(&d, &anna, "DELETE", "/api/v1/certificate", None);
    assert_eq!(status, 403);
    let r = d.https(
        Req::new("PUT", "/api/v1/certificate")
            .json(upload.clone())
            .cookie(&root.0),
    );
    assert_eq!(r.status, 403, "no CSRF token");

    let (status, v) = send(&d, &root, "GET", "/api/v1/certificate", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["source"], "generated");
    let generated = device_crt(&d);

    // Each bad upload: 400 naming the field and the reason; nothing replaced.
    let other = chain(2090);
    let expired = chain(2021);
    let cases: [(Value, &str, &str); 6] = [
        (
            json!({"certificate": "hello", "key": good.key_pem}),
            "certificate",
            "no PEM certificate",
        ),
        (
            json!({"certificate": good.leaf_pem, "key": ""}),
            "key",
            "no PEM private key",
        ),
        (
            json!({"certificate": good.leaf_pem, "key": other.key_pem}),
            "key",
            "does not belong",
        ),
        (
            json!({"certificate": expired.leaf_pem, "key": expired.key_pem}),
            "certificate",
            "expired on 2021-01-01",
        ),
        (
            json!({"certificate": good.leaf_pem.replace("MII", "M!I"), "key": good.key_pem}),
            "certificate",
            "",
        ),
        (
            json!({"certificate": good.leaf_pem}),
            "",
            "missing field `key`",
        ),
    ];
    for (body, field, reason) in cases {
        let (status, v) = send(&d, &root, "PUT", "/api/v1/certificate", Some(body));
        assert_eq!(status, 400, "{v}");
        if !field.is_empty() {
            assert_eq!(v["field"], field, "{v}");
        }
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(reason)),
            "{reason}: {v}"
        );
    }
    assert_eq!(device_crt(&d), generated, "nothing replaced");
    assert_eq!(
        served(d.https, &generated, "pbx.local"),
        Ok(der(&generated))
    );

    // The good chain: served to the next client without a restart.
    let (status, v) = send(&d, &root, "PUT", "/api/v1/certificate", Some(upload));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["source"].as_str(), v["chain_len"].as_u64()),
        (Some("uploaded"), Some(2))
    );
    assert_eq!(
        served(d.https, &good.ca_pem, "pbx.example.com"),
        Ok(der(&good.leaf_pem)),
        "the uploaded leaf, verified through the test CA"
    );
    assert!(
        served(d.https, &generated, "pbx.local").is_err(),
        "the old one is gone"
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(d.data.join("tls/device.key"))
            .expect("key")
            .permissions()
            .mode()
    };
    assert_eq!(mode & 0o777, 0o600);
    let audit = audit_text(&d, &root);
    assert!(audit.contains("certificate.upload"), "{audit}");
    assert!(!audit.contains("PRIVATE KEY"), "no key in the audit log");

    // Kept over a restart.
    drop(d);
    let mut d = start(dir.path());
    assert_eq!(
        served(d.https, &good.ca_pem, "pbx.example.com"),
        Ok(der(&good.leaf_pem))
    );
    d.trust(&good.ca_pem, "pbx.example.com");
    let root = d.login("root", ROOT_PW);
    let (status, v) = send(&d, &root, "GET", "/api/v1/certificate", None);
    assert_eq!(
        (status, v["source"].as_str()),
        (200, Some("uploaded")),
        "{v}"
    );

    // Back to a generated certificate: a new one, served at once.
    let (status, v) = send(&d, &root, "DELETE", "/api/v1/certificate", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["source"], "generated");
    let fresh = device_crt(&d);
    assert_ne!(fresh, generated);
    assert_eq!(served(d.https, &fresh, "pbx.local"), Ok(der(&fresh)));
    assert!(served(d.https, &good.ca_pem, "pbx.example.com").is_err());
}

/// The leaf the SIP-over-TLS listener at `port` presents to a client trusting
/// `root_pem` and asking for `name`, after a SIP OPTIONS over the connection was
/// answered (so it is the SIP server, not just a TLS socket), or why it failed.
fn served_sip(port: u16, root_pem: &str, name: &str) -> Result<Vec<u8>, String> {
    let name = ServerName::try_from(name.to_owned()).expect("name");
    let conn = rustls::ClientConnection::new(client_trusting(root_pem), name).expect("client");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let local = tcp.local_addr().expect("local");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let options = format!(
        "OPTIONS sip:127.0.0.1:{port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bKcert{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=p1\r\n\
         To: <sip:127.0.0.1>\r\n\
         Call-ID: cert-probe-{}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    tls.write_all(options.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    if !got.starts_with(b"SIP/2.0 ") {
        return Err(format!("no SIP answer: {}", String::from_utf8_lossy(&got)));
    }
    let certs = tls.conn.peer_certificates().ok_or("no peer certificate")?;
    Ok(certs[0].as_ref().to_vec())
}

#[test]
fn an_uploaded_certificate_reaches_new_sip_tls_connections_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = web_support::start_with(
        dir.path(),
        "127.0.0.1:0",
        &["--sip-tls-listen", "127.0.0.1:0"],
    );
    let sips = {
        let log = d.log.lock().expect("log");
        let ready = log
            .iter()
            .find(|l| l.contains("ready:"))
            .expect("ready line")
            .clone();
        web_support::port_after(&ready, " sips=")
    };
    let (root, _anna) = admin_and_user(&d);
    let generated = device_crt(&d);
    assert_eq!(
        served_sip(sips, &generated, "pbx.local"),
        Ok(der(&generated)),
        "SIP over TLS starts with the generated device certificate"
    );

    let good = chain(2090);
    let upload =
        json!({"certificate": format!("{}{}", good.leaf_pem, good.ca_pem), "key": good.key_pem});
    let (status, v) = send(&d, &root, "PUT", "/api/v1/certificate", Some(upload));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        served_sip(sips, &good.ca_pem, "pbx.example.com"),
        Ok(der(&good.leaf_pem)),
        "the uploaded leaf on the SIP TLS port, verified through the test CA"
    );
    assert!(
        served_sip(sips, &generated, "pbx.local").is_err(),
        "the old certificate is no longer offered"
    );
    // HTTPS serves the same one.
    assert_eq!(
        served(d.https, &good.ca_pem, "pbx.example.com"),
        Ok(der(&good.leaf_pem))
    );

    // Back to a generated certificate: SIP-TLS follows again.
    let (status, v) = send(&d, &root, "DELETE", "/api/v1/certificate", None);
    assert_eq!(status, 200, "{v}");
    let fresh = device_crt(&d);
    assert_eq!(served_sip(sips, &fresh, "pbx.local"), Ok(der(&fresh)));
}
