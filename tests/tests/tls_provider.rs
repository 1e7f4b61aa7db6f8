//! The crate never installs rustls's process-wide crypto provider: that is the
//! application's choice, and an application that installs its own after a library did
//! would fail. A TLS client built before the application installed one is refused with the
//! call to make; once it has, TLS works. A test binary of its own, so that no other test
//! has installed a provider in this process.

use redis_locked::{ClientBuilder, LockError};

#[test]
fn a_tls_client_needs_the_applications_crypto_provider_and_installs_none() {
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    let e = ClientBuilder::new("rediss://127.0.0.1:6380")
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, LockError::InvalidConfig { reason } if reason.contains("install_default")),
        "{e:?}"
    );
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "building a client installed a provider"
    );

    // The application installs the provider it wants; the same client then builds.
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("nobody installed one before");
    ClientBuilder::new("rediss://127.0.0.1:6380")
        .build()
        .unwrap();
}
