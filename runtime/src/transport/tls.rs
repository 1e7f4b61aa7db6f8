//! TLS settings of a client (`rediss://`): the CA to trust and the client's own certificate,
//! handed to the `redis` crate, whose rustls support makes every TLS connection.
//!
//! The server's certificate is checked against the given CA, or else the platform's trusted
//! roots, and must name the host of the URL; there is no way to turn the check off.
//!
//! rustls needs a process-wide crypto provider, and choosing one is the application's
//! business: this crate never installs one (an application that installs its own after us
//! would otherwise fail). A TLS client is refused at build time, with the call to make,
//! when none is installed.

#[cfg(feature = "tls")]
use crate::util::error::LockError;

/// The certificates a client's TLS connections use, checked when the client is built.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    /// PEM of the CA that signed the servers' certificates.
    pub(crate) root_certificate: Option<Vec<u8>>,
    /// PEM of the client's certificate chain and of its private key, for servers that
    /// ask clients for one (`tls-auth-clients yes`).
    pub(crate) client_certificate: Option<(Vec<u8>, Vec<u8>)>,
}

#[cfg(feature = "tls")]
impl TlsSettings {
    /// The settings as the `redis` crate takes them, after checking that they are PEM and
    /// that rustls has a provider to work with.
    pub(crate) fn certificates(&self) -> Result<redis::TlsCertificates, LockError> {
        check_provider()?;
        if let Some(pem) = &self.root_certificate {
            check_certificates(pem, "TLS root certificate")?;
        }
        if let Some((chain, key)) = &self.client_certificate {
            check_certificates(chain, "TLS client certificate")?;
            check_key(key)?;
        }
        Ok(redis::TlsCertificates {
            client_tls: self.client_certificate.as_ref().map(|(chain, key)| {
                redis::ClientTlsConfig {
                    client_cert: chain.clone(),
                    client_key: key.clone(),
                }
            }),
            root_cert: self.root_certificate.clone(),
        })
    }
}

/// Fails unless the application installed rustls's process-wide crypto provider, which
/// every TLS connection of the `redis` crate uses. Left to itself, rustls would install one
/// on first use, or panic when the build holds several.
#[cfg(feature = "tls")]
pub(crate) fn check_provider() -> Result<(), LockError> {
    match rustls::crypto::CryptoProvider::get_default() {
        Some(_) => Ok(()),
        None => Err(LockError::invalid(
            "rediss:// needs rustls's process-wide crypto provider, and none is installed: \
             call `rustls::crypto::aws_lc_rs::default_provider().install_default()` (or \
             `ring::default_provider()`) at start-up, before building the client",
        )),
    }
}

/// Fails unless `pem` holds at least one certificate and nothing unreadable.
#[cfg(feature = "tls")]
fn check_certificates(pem: &[u8], what: &str) -> Result<(), LockError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| LockError::invalid(format!("the {what} is not valid PEM: {e}")))?;
        found += 1;
    }
    if found == 0 {
        return Err(LockError::invalid(format!(
            "the {what} PEM holds no certificate"
        )));
    }
    Ok(())
}

/// Fails unless `pem` holds a private key.
#[cfg(feature = "tls")]
fn check_key(pem: &[u8]) -> Result<(), LockError> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem).map(drop).map_err(|e| {
        LockError::invalid(format!("the TLS client key is not a PEM private key: {e}"))
    })
}
