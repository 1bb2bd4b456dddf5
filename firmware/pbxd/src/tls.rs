//! The device's TLS identity: a certificate and key in the data directory, generated
//! (self-signed, ECDSA P-256) at first start and replaceable by the installer's own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate and key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (mode 0600).
    pub key: PathBuf,
}

impl TlsPaths {
    /// `DATA/tls/device.crt` and `DATA/tls/device.key`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        let dir = data_dir.join("tls");
        Self {
            cert: dir.join("device.crt"),
            key: dir.join("device.key"),
        }
    }
}

/// Why the TLS identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing the files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The PEM files do not hold a usable certificate or key.
    #[error("{path}: {why}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Generating the certificate failed.
    #[error("cannot generate the device certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the pair (e.g. key does not match certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Loads the identity, generating it first if neither file exists.
pub fn server_config(
    paths: &TlsPaths,
    hostnames: &[String],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    if !paths.cert.exists() && !paths.key.exists() {
        generate(paths, hostnames)?;
    }
    let certs = CertificateDer::pem_file_iter(&paths.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::BadPem {
            path: paths.cert.clone(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::BadPem {
            path: paths.cert.clone(),
            why: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| TlsError::BadPem {
        path: paths.key.clone(),
        why: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(cfg))
}

/// Where Debian and Yocto's `ca-certificates` put the system's trusted roots.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS client configuration for talking to servers (the provider's SIP proxy, hawkBit):
/// the system's roots plus, if given, a CA file of our own (a private PKI, or a test CA).
/// A missing system bundle is fine when `extra_ca` is given; with neither, an error.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut add_file = |path: &Path, required: bool| -> Result<(), TlsError> {
        let certs = match CertificateDer::pem_file_iter(path) {
            Ok(it) => it
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::BadPem {
                    path: path.to_path_buf(),
                    why: e.to_string(),
                })?,
            Err(_) if !required => return Ok(()),
            Err(e) => {
                return Err(TlsError::BadPem {
                    path: path.to_path_buf(),
                    why: e.to_string(),
                })
            }
        };
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if required && added == 0 {
            return Err(TlsError::BadPem {
                path: path.to_path_buf(),
                why: "no usable CA certificate found".into(),
            });
        }
        Ok(())
    };
    add_file(Path::new(SYSTEM_ROOTS), false)?;
    if let Some(ca) = extra_ca {
        add_file(ca, true)?;
    }
    if roots.is_empty() {
        return Err(TlsError::BadPem {
            path: PathBuf::from(SYSTEM_ROOTS),
            why: "no trusted CA certificates (install ca-certificates or give a CA file)".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn generate(paths: &TlsPaths, hostnames: &[String]) -> Result<(), TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    let mut names = vec!["pbx.local".to_owned()];
    names.extend(hostnames.iter().cloned());
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pbxd device certificate");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    if let Some(dir) = paths.cert.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    crate::secret::write_new_private(&paths.key, key.serialize_pem().as_bytes())
        .map_err(io(&paths.key))?;
    std::fs::write(&paths.cert, cert.pem()).map_err(io(&paths.cert))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_generated_once_with_a_private_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = TlsPaths::in_data_dir(dir.path());
        server_config(&paths, &["192.0.2.1".into()]).expect("generated");
        let mode = std::fs::metadata(&paths.key)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(&paths.cert).expect("cert");
        server_config(&paths, &[]).expect("reloaded");
        assert_eq!(
            std::fs::read(&paths.cert).expect("cert"),
            first,
            "kept, not regenerated"
        );
    }

    #[test]
    fn garbage_certificate_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = TlsPaths::in_data_dir(dir.path());
        std::fs::create_dir_all(paths.cert.parent().expect("dir")).expect("mkdir");
        std::fs::write(&paths.cert, "not a certificate").expect("write");
        std::fs::write(&paths.key, "not a key").expect("write");
        let err = server_config(&paths, &[]).expect_err("refused");
        assert!(err.to_string().contains("device.crt"), "{err}");
    }
}
