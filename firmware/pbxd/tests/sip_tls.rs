//! SIP over TLS end to end: the real `pbxd` with `--sip-tls-listen`, a rustls client
//! that trusts only the device certificate pbxd generated, and a full digest round.
//! (Debian's sipp is built without OpenSSL, so it cannot play this peer.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pbx_sip::auth;
use pbx_sip::message::{Frame, HeaderName, Limits, Message, StreamDecoder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts pbxd and waits for its readiness line; returns the TLS port.
fn start(data: &std::path::Path) -> (Daemon, u16) {
    let tls_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbxd"))
        .arg("--data-dir")
        .arg(data)
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
        ])
        .arg("--sip-tls-listen")
        .arg(format!("127.0.0.1:{tls_port}"))
        .env("PBXD_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("pbxd starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("ready:"))
        .expect("pbxd prints its readiness line");
    assert!(
        ready.contains(&format!("sips=127.0.0.1:{tls_port}")),
        "{ready}"
    );
    // keep draining so pbxd never blocks on a full pipe
    std::thread::spawn(move || for _ in lines {});
    (Daemon(child), tls_port)
}

fn register(cseq: u32, auth_line: Option<&str>) -> String {
    let auth_line = auth_line
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:pbx.local SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls{cseq};rport\r\n\
         From: <sip:2001@pbx.local>;tag=t1\r\n\
         To: <sip:2001@pbx.local>\r\n\
         Call-ID: tls-e2e\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:2001@127.0.0.1:5999;transport=tls>\r\n\
         Expires: 300\r\n\
         Max-Forwards: 70\r\n\
         {auth_line}Content-Length: 0\r\n\r\n"
    )
}

async fn read_message<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    dec: &mut StreamDecoder,
) -> Message {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = dec.next() {
            match frame.expect("pbxd sends well-formed SIP") {
                Frame::Message(m) => return m,
                Frame::KeepAlive | Frame::Pong => continue,
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("answer within 10 s")
            .expect("read");
        assert!(n > 0, "pbxd closed the TLS connection");
        dec.push(&buf[..n]);
    }
}

#[tokio::test]
async fn phone_registers_over_tls_with_digest_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["extension", "add", "2001", "--password", "tls-secret-99"])
        .status()
        .expect("pbxctl runs");
    assert!(ok.success());
    let (_daemon, port) = start(dir.path());

    // Trust exactly the certificate pbxd generated in its data dir.
    let pem = dir.path().join("tls/device.crt");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pem).expect("cert file") {
        roots.add(cert.expect("cert")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("pbx.local").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake verifies the device cert");
    let mut dec = StreamDecoder::new(Limits::default());

    tls.write_all(register(1, None).as_bytes())
        .await
        .expect("send");
    let challenge = read_message(&mut tls, &mut dec).await;
    assert_eq!(challenge.status(), Some(401));
    let values: Vec<&str> = challenge.header_all(&HeaderName::WwwAuthenticate).collect();
    let chal = auth::select_challenge(values).expect("supported challenge");
    let creds = auth::authorize(
        &chal,
        "REGISTER",
        "sip:pbx.local",
        "2001",
        "tls-secret-99",
        "c1",
        1,
    )
    .expect("authorize");
    tls.write_all(register(2, Some(&creds)).as_bytes())
        .await
        .expect("send");
    let ok = read_message(&mut tls, &mut dec).await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    let contact = ok.header(&HeaderName::Contact).expect("binding listed");
    assert!(contact.contains("transport=tls"), "{contact}");

    // RFC 5626 keep-alive over TLS: double CRLF gets a CRLF.
    tls.write_all(b"\r\n\r\n").await.expect("ping");
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut pong))
        .await
        .expect("pong in time")
        .expect("read");
    assert_eq!(&pong, b"\r\n");

    // pbxctl sees the binding with its TLS flow once the writer thread has stored it.
    let listing = (0..50)
        .map(|_| {
            let out = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
                .arg("--data-dir")
                .arg(dir.path())
                .arg("registrations")
                .output()
                .expect("pbxctl runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .find(|text| {
            let found = text.contains("2001@pbx.local");
            if !found {
                std::thread::sleep(Duration::from_millis(100));
            }
            found
        })
        .expect("binding persisted within 5 s");
    assert!(listing.contains("tls:127.0.0.1"), "{listing}");
}
