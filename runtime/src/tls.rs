//! TLS (`rediss://`) for our own connections, on rustls with the `ring` provider.
//!
//! The server's certificate is checked against the CA given to
//! `ClientBuilder::tls_root_certificate`, or else the platform's trusted roots (read by
//! `rustls-native-certs`, as the `redis` crate does for the pub/sub connection), and must
//! name the host of the URL. There is no way to turn the check off.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::error::LockError;

/// The client configuration for one endpoint.
pub(crate) fn client_config(
    root_certificate: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, LockError> {
    let mut roots = rustls::RootCertStore::empty();
    match root_certificate {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    LockError::invalid(format!("the TLS root certificate is not valid PEM: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    LockError::invalid(format!("the TLS root certificate is not usable: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(LockError::invalid(
                    "the TLS root certificate PEM holds no certificate",
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(LockError::invalid(
                    "rediss:// needs trusted root certificates, and none were found on this \
                     system: give the server's CA with `ClientBuilder::tls_root_certificate`",
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The `redis` crate builds its own configuration (for pub/sub) with the process-wide
    // provider; make sure there is one, without replacing one the application chose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LockError::invalid(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn server_name(host: &str) -> Result<ServerName<'static>, std::io::Error> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{host}` is not a valid TLS server name: {e}"),
        )
    })
}

/// Completes the TLS handshake on a blocking TCP stream (its read timeout bounds it).
pub(crate) fn handshake_blocking(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    tcp: &mut std::net::TcpStream,
) -> Result<rustls::ClientConnection, std::io::Error> {
    let mut tls = rustls::ClientConnection::new(config.clone(), server_name(host)?)
        .map_err(std::io::Error::other)?;
    while tls.is_handshaking() {
        tls.complete_io(tcp).map_err(handshake_failed)?;
    }
    Ok(tls)
}

/// Completes the TLS handshake on an async TCP stream.
pub(crate) async fn handshake(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, std::io::Error> {
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(server_name(host)?, tcp)
        .await
        .map_err(handshake_failed)
}

/// A failed handshake, as an I/O error of the same kind that says so and keeps the TLS
/// library's error (a refused certificate, say) as its source.
fn handshake_failed(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), HandshakeFailed(e))
}

#[derive(Debug)]
struct HandshakeFailed(std::io::Error);

impl std::fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TLS handshake failed")
    }
}

impl std::error::Error for HandshakeFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
