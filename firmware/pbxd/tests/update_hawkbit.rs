//! The hawkBit DDI client against a small local DDI server (below) that answers the
//! documented endpoints with the documented JSON: poll, deploy with a download that
//! breaks and resumes, hash mismatch, cancel, config data.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

mod update_support;
use update_support::ddi_server::{DdiServer, Script, BASE};

use pbxd::update::hawkbit::{DdiConfig, DdiError, Execution, Feedback, Finished};
use pbxd::update::hawkbit_client::{ClientError, CycleContext, CycleOutcome, DdiClient};
use pbxd::update::{
    InstallContext, InstallPolicy, Installed, Installer, MarkState, Marked, Progress, SlotRef,
    UpdateError, UpdateStatus,
};

fn client(server: &DdiServer) -> DdiClient {
    DdiClient::new(DdiConfig {
        server: server.url(),
        tenant: "DEFAULT".into(),
        controller_id: "pbx-1".into(),
        token: "s3cret".into(),
        ca_file: None,
    })
}

fn artifact_bytes() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[tokio::test]
async fn poll_reads_the_sleep_and_the_links_with_the_target_token() {
    let server = DdiServer::start(Script::default());
    let reply = client(&server).poll().await.unwrap();
    assert_eq!(reply.sleep, Duration::from_secs(42));
    assert_eq!(
        reply.deployment.as_deref(),
        Some(format!("{}{BASE}/deploymentBase/8?c=-21", server.url()).as_str())
    );
    assert_eq!(reply.cancel, None);
    assert!(reply.config_data.is_some());
    let seen = server.seen();
    assert_eq!(seen[0].headers["authorization"], "TargetToken s3cret");

    // A wrong token is a clear HTTP error, not a parse failure.
    let bad = DdiClient::new(DdiConfig {
        token: "wrong".into(),
        ..DdiConfig {
            server: server.url(),
            tenant: "DEFAULT".into(),
            controller_id: "pbx-1".into(),
            token: String::new(),
            ca_file: None,
        }
    });
    assert!(matches!(
        bad.poll().await,
        Err(ClientError::Status { status: 401, .. })
    ));
}

#[tokio::test]
async fn deploy_downloads_resumes_after_a_cut_and_reports_feedback() {
    let bytes = artifact_bytes();
    let server = DdiServer::start(Script {
        artifact: bytes.clone(),
        cut_first_after: Some(70_000),
        ..Script::default()
    });
    let c = client(&server);
    let reply = c.poll().await.unwrap();
    let d = c
        .deployment(reply.deployment.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(d.action_id, "8");
    let artifact = &d.chunks[0].artifacts[0];
    assert_eq!(artifact.size, bytes.len() as u64);

    c.deployment_feedback(
        &d.action_id,
        &Feedback {
            execution: Execution::Proceeding,
            finished: Finished::None,
            progress: Some((0, 1)),
            details: vec!["downloading".into()],
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("pbx-2.0.raucb");
    c.download(artifact, &dest).await.unwrap();
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        bytes,
        "resumed file is whole"
    );
    let gets: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.path == "/artifacts/pbx-2.0.raucb")
        .collect();
    assert_eq!(gets.len(), 2, "one cut transfer, one resumed");
    assert_eq!(gets[0].headers.get("range"), None);
    assert_eq!(gets[1].headers["range"], "bytes=70000-");

    c.deployment_feedback(
        &d.action_id,
        &Feedback {
            execution: Execution::Closed,
            finished: Finished::Success,
            progress: None,
            details: vec!["installed".into()],
        },
    )
    .await
    .unwrap();
    let feedback: Vec<serde_json::Value> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/deploymentBase/8/feedback"))
        .map(|s| {
            assert_eq!(s.headers["content-type"], "application/json");
            serde_json::from_str(&s.body).unwrap()
        })
        .collect();
    assert_eq!(feedback.len(), 2);
    assert_eq!(feedback[0]["status"]["execution"], "proceeding");
    assert_eq!(feedback[0]["status"]["result"]["progress"]["of"], 1);
    assert_eq!(feedback[1]["status"]["execution"], "closed");
    assert_eq!(feedback[1]["status"]["result"]["finished"], "success");
}

#[tokio::test]
async fn a_hash_mismatch_is_refused_and_the_file_removed() {
    let server = DdiServer::start(Script {
        artifact: artifact_bytes(),
        announced_sha256: Some("00".repeat(32)),
        ..Script::default()
    });
    let c = client(&server);
    let reply = c.poll().await.unwrap();
    let d = c
        .deployment(reply.deployment.as_deref().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("pbx-2.0.raucb");
    let err = c
        .download(&d.chunks[0].artifacts[0], &dest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Ddi(DdiError::HashMismatch { ref expected, .. }) if *expected == "00".repeat(32)),
        "{err:?}"
    );
    assert!(!dest.exists(), "nothing unverified is left to install");
}

#[tokio::test]
async fn cancel_is_read_and_confirmed_and_config_data_sent() {
    let server = DdiServer::start(Script {
        cancel: true,
        ..Script::default()
    });
    let c = client(&server);
    let reply = c.poll().await.unwrap();
    let cancel = c
        .cancel_request(reply.cancel.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(cancel.stop_id, "8");
    c.cancel_feedback(
        &cancel.id,
        &Feedback {
            execution: Execution::Canceled,
            finished: Finished::Success,
            progress: None,
            details: vec!["cancelled before download".into()],
        },
    )
    .await
    .unwrap();
    let attrs = BTreeMap::from([
        ("hwRevision".to_owned(), "2".to_owned()),
        ("firmware".to_owned(), "2.0".to_owned()),
    ]);
    c.send_config_data(&attrs).await.unwrap();
    let seen = server.seen();
    let fb = seen
        .iter()
        .find(|s| s.path == format!("{BASE}/cancelAction/11/feedback"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&fb.body).unwrap();
    assert_eq!(v["status"]["execution"], "canceled");
    let cd = seen.iter().find(|s| s.method == "PUT").unwrap();
    assert_eq!(cd.path, format!("{BASE}/configData"));
    let v: serde_json::Value = serde_json::from_str(&cd.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"mode": "merge", "data": {"hwRevision": "2", "firmware": "2.0"}})
    );
}

/// An installer that keeps what it was given, and answers as told.
#[derive(Default)]
struct FakeInstaller {
    got: Mutex<Vec<Vec<u8>>>,
    refuse_with: Option<String>,
}

impl Installer for FakeInstaller {
    async fn install(
        &self,
        bundle: &std::path::Path,
        _on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<Installed, UpdateError> {
        self.got
            .lock()
            .unwrap()
            .push(std::fs::read(bundle).unwrap());
        match &self.refuse_with {
            Some(m) => Err(UpdateError::InstallFailed {
                code: 1,
                message: m.clone(),
            }),
            None => Ok(Installed {
                primary: Some("rootfs.1".into()),
            }),
        }
    }
    async fn status(&self) -> Result<UpdateStatus, UpdateError> {
        Err(UpdateError::Disabled)
    }
    async fn mark(&self, _: MarkState, _: SlotRef) -> Result<Marked, UpdateError> {
        Err(UpdateError::Disabled)
    }
}

fn cycle_ctx(dir: &std::path::Path, calls: usize) -> CycleContext {
    CycleContext {
        download_dir: dir.to_path_buf(),
        attributes: BTreeMap::from([("hwRevision".to_owned(), "2".to_owned())]),
        policy: InstallPolicy::default(),
        install: InstallContext {
            active_calls: calls,
            emergency_call: false,
            local_time: time::Time::MIDNIGHT,
        },
    }
}

fn deployment_feedback(server: &DdiServer) -> Vec<serde_json::Value> {
    server
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/deploymentBase/8/feedback"))
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_poll_cycle_downloads_installs_and_reports_success() {
    let bytes = artifact_bytes();
    let server = DdiServer::start(Script {
        artifact: bytes.clone(),
        ..Script::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let installer = FakeInstaller::default();
    let (reply, done) = client(&server)
        .poll_cycle(&installer, &cycle_ctx(dir.path(), 0))
        .await
        .unwrap();
    assert_eq!(reply.sleep, Duration::from_secs(42));
    assert_eq!(
        done,
        vec![
            CycleOutcome::ConfigSent,
            CycleOutcome::Installed {
                action_id: "8".into()
            }
        ]
    );
    assert_eq!(*installer.got.lock().unwrap(), vec![bytes]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "download removed"
    );
    let fb = deployment_feedback(&server);
    assert_eq!(fb.len(), 2);
    assert_eq!(fb[0]["status"]["execution"], "proceeding");
    assert_eq!(fb[1]["status"]["execution"], "closed");
    assert_eq!(fb[1]["status"]["result"]["finished"], "success");
}

#[tokio::test]
async fn an_attempt_during_calls_is_deferred_and_a_refused_bundle_reported() {
    let server = DdiServer::start(Script {
        artifact: artifact_bytes(),
        update: Some("attempt"),
        ..Script::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let installer = FakeInstaller::default();
    let (_, done) = client(&server)
        .poll_cycle(&installer, &cycle_ctx(dir.path(), 2))
        .await
        .unwrap();
    assert_eq!(
        done[1],
        CycleOutcome::Deferred {
            action_id: "8".into(),
            reason: "2 call(s) in progress; try again later or force the install".into()
        }
    );
    assert!(
        installer.got.lock().unwrap().is_empty(),
        "nothing installed"
    );
    assert!(
        !server
            .seen()
            .iter()
            .any(|s| s.path.starts_with("/artifacts/")),
        "nothing downloaded"
    );

    // Quiet now, but the installer (RAUC) refuses the bundle: the server hears why.
    let installer = FakeInstaller {
        refuse_with: Some("Compatible mismatch: Expected 'a' but bundle manifest has 'b'".into()),
        ..FakeInstaller::default()
    };
    let (_, done) = client(&server)
        .poll_cycle(&installer, &cycle_ctx(dir.path(), 0))
        .await
        .unwrap();
    assert!(
        matches!(&done[1], CycleOutcome::Failed { reason, .. } if reason.contains("Compatible mismatch")),
        "{done:?}"
    );
    let last = deployment_feedback(&server).pop().unwrap();
    assert_eq!(last["status"]["result"]["finished"], "failure");
    assert!(last["status"]["details"][0]
        .as_str()
        .unwrap()
        .contains("Compatible mismatch"));
}

#[tokio::test]
async fn a_cancelled_action_is_confirmed_and_not_installed() {
    let server = DdiServer::start(Script {
        artifact: artifact_bytes(),
        cancel: true,
        ..Script::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let installer = FakeInstaller::default();
    let (_, done) = client(&server)
        .poll_cycle(&installer, &cycle_ctx(dir.path(), 0))
        .await
        .unwrap();
    assert_eq!(
        done,
        vec![
            CycleOutcome::ConfigSent,
            CycleOutcome::Canceled {
                stop_id: "8".into()
            }
        ]
    );
    assert!(installer.got.lock().unwrap().is_empty());
}

/// A TLS front for the plain DDI server: a CA, a certificate for `name` signed by it, and a
/// listener that decrypts and passes the bytes on. Returns the front's port and the CA's PEM.
async fn tls_front(backend: std::net::SocketAddr, name: &str) -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, ca.pem())
}

#[tokio::test]
async fn polls_over_https_trusting_only_the_configured_ca_and_the_right_name() {
    let server = DdiServer::start(Script::default());
    let (port, ca_pem) = tls_front(server.addr, "localhost").await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let https = |host: &str, ca: Option<std::path::PathBuf>| {
        DdiClient::new(DdiConfig {
            server: format!("https://{host}:{port}"),
            tenant: "DEFAULT".into(),
            controller_id: "pbx-1".into(),
            token: "s3cret".into(),
            ca_file: ca,
        })
    };

    let reply = https("localhost", Some(ca_file.clone()))
        .poll()
        .await
        .unwrap();
    assert_eq!(reply.sleep, Duration::from_secs(42));
    assert_eq!(
        server.seen()[0].headers["authorization"],
        "TargetToken s3cret",
        "the token went through the TLS connection"
    );

    // Without our CA the server's certificate is not trusted.
    let untrusted = https("localhost", None).poll().await;
    assert!(
        matches!(&untrusted, Err(ClientError::Http { reason, .. }) if reason.contains("TLS")),
        "{untrusted:?}"
    );
    // A name the certificate does not carry is refused too.
    let wrong_name = https("127.0.0.1", Some(ca_file)).poll().await;
    assert!(
        matches!(&wrong_name, Err(ClientError::Http { reason, .. }) if reason.contains("TLS")),
        "{wrong_name:?}"
    );
    assert_eq!(
        server.seen().len(),
        1,
        "refused connections reach no endpoint"
    );
    // A CA file that holds no certificate is a clear error, not a silent fallback.
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let broken = https("localhost", Some(dir.path().join("empty.pem")))
        .poll()
        .await;
    assert!(
        matches!(&broken, Err(ClientError::Http { reason, .. }) if reason.contains("TLS set-up")),
        "{broken:?}"
    );
}
