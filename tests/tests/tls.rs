//! `rediss://`: locks over TLS, async and blocking, with waiters woken by pub/sub over TLS,
//! a server certificate from an untrusted CA refused, and a client certificate for servers
//! that ask for one. The CA and the certificates are made here with rcgen. Each test first
//! installs rustls's crypto provider, as an application does (`tls_provider.rs` checks
//! what happens when it does not).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{RedisServer, owner_token, wait_for_subscribers};

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, as PEM files in a
/// fresh directory. Returns the directory and the CA's PEM.
fn certificates(tag: &str) -> (PathBuf, String) {
    let (dir, ca_pem, _) = certificates_and_ca(tag);
    (dir, ca_pem)
}

/// [`certificates`], and the CA, to sign more with.
fn certificates_and_ca(tag: &str) -> (PathBuf, String, CertifiedIssuer<'static, KeyPair>) {
    install_provider();
    let dir = std::env::temp_dir().join(format!("redis-lock-tls-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, ca_pem) = certificate_authority();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), &ca_pem).unwrap();
    (dir, ca_pem, ca)
}

/// What an application using TLS does at start-up: the crate installs no provider.
fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn certificate_authority() -> (CertifiedIssuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let pem = ca.pem();
    (ca, pem)
}

fn tls_server(tag: &str) -> (RedisServer, u16, String) {
    let (dir, ca_pem) = certificates(tag);
    let (server, port) = RedisServer::start_tls(
        &dir.join("server.crt"),
        &dir.join("server.key"),
        &dir.join("ca.crt"),
    );
    // redis-server has read them.
    std::fs::remove_dir_all(&dir).unwrap();
    (server, port, ca_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_wakes_waiters_over_tls() {
    let (server, port, ca) = tls_server("locks");
    let url = format!("rediss://127.0.0.1:{port}");
    for client in ["tls-a", "tls-b"] {
        ClientBuilder::new(&url)
            .tls_root_certificate(ca.as_bytes())
            .register(client)
            .unwrap();
    }

    // Async.
    let lock = Lock::with_client("tls-a", "job")
        .unwrap()
        .expire(Duration::from_secs(10));
    let guard = lock.acquire(None).await.unwrap();
    let owner = owner_token(&mut server.connection(), "lock:{job}");
    assert_eq!(owner.as_deref(), Some(guard.token()));
    guard.extend(None).await.unwrap();
    guard.release().await.unwrap();

    // Blocking.
    let blocking = lock.clone();
    tokio::task::spawn_blocking(move || {
        let guard = blocking.acquire_blocking(None).unwrap();
        assert!(blocking.try_acquire_blocking().unwrap().is_none());
        guard.release().unwrap();
        assert!(!blocking.is_locked_blocking().unwrap());
    })
    .await
    .unwrap();

    // Client B waits while client A holds it for 30 s; A's release reaches B only as an
    // announcement on B's pub/sub connection (the clients share no waiter table).
    let held = lock
        .clone()
        .expire(Duration::from_secs(30))
        .acquire(None)
        .await
        .unwrap();
    let waiter = tokio::spawn(async {
        Lock::with_client("tls-b", "job")
            .unwrap()
            .acquire(None)
            .await
            .map(|guard| (Instant::now(), guard))
    });
    wait_for_subscribers(&server, "lock:{job}", 1).await;
    held.release().await.unwrap();
    let released = Instant::now();
    let (acquired, guard) = waiter.await.unwrap().unwrap();
    let after = acquired.saturating_duration_since(released);
    assert!(
        after < Duration::from_secs(2),
        "woken {after:?} after the release; the lease was 30 s"
    );
    guard.release().await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let (_server, port, _ca) = tls_server("untrusted");
    let (_, other_ca) = certificate_authority();
    ClientBuilder::new(format!("rediss://127.0.0.1:{port}"))
        .tls_root_certificate(other_ca.as_bytes())
        .register("tls-untrusted")
        .unwrap();
    let lock = Lock::with_client("tls-untrusted", "job").unwrap();
    match lock.acquire(Some(Duration::ZERO)).await {
        Err(e @ LockError::Connect { .. }) => {
            let LockError::Connect { address, .. } = &e else {
                unreachable!()
            };
            assert_eq!(address, &format!("127.0.0.1:{port} (TLS)"));
            // The TLS library's reason is kept as a cause, not flattened into the message.
            let causes = causes(&e);
            assert!(
                causes.len() >= 2
                    && causes[0] == "TLS handshake failed"
                    && causes[1].contains("certificate"),
                "{causes:?}"
            );
        }
        other => panic!("expected a Connect error, got {other:?}"),
    }
}

/// The messages of an error's causes, outermost first.
fn causes(e: &dyn std::error::Error) -> Vec<String> {
    std::iter::successors(e.source(), |cause| cause.source())
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_servers_that_ask_for_one() {
    let (dir, ca_pem, ca) = certificates_and_ca("mtls");
    let (server, port) = RedisServer::start_tls_asking(
        &dir.join("server.crt"),
        &dir.join("server.key"),
        &dir.join("ca.crt"),
        true,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let url = format!("rediss://127.0.0.1:{port}");

    // Without a certificate the server ends the handshake.
    ClientBuilder::new(&url)
        .tls_root_certificate(ca_pem.as_bytes())
        .register("mtls-none")
        .unwrap();
    let refused = Lock::with_client("mtls-none", "job")
        .unwrap()
        .acquire(Some(Duration::ZERO))
        .await;
    assert!(
        matches!(&refused, Err(e) if e.is_unavailable()),
        "{refused:?}"
    );

    // With one the CA signed, it locks.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["locks-client".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    // Not rcgen's default name, which the CA has too: OpenSSL would take it for the CA.
    params
        .distinguished_name
        .push(DnType::CommonName, "locks-client");
    let cert = params.signed_by(&key, &ca).unwrap();
    ClientBuilder::new(&url)
        .tls_root_certificate(ca_pem.as_bytes())
        .tls_client_certificate(cert.pem(), key.serialize_pem())
        .register("mtls-ok")
        .unwrap();
    let lock = Lock::with_client("mtls-ok", "job").unwrap();
    let guard = lock.acquire(None).await.unwrap();
    let owner = owner_token(&mut server.connection(), "lock:{job}");
    assert_eq!(owner.as_deref(), Some(guard.token()));
    guard.release().await.unwrap();
}

#[test]
fn a_client_key_that_is_not_pem_is_invalid_config() {
    install_provider();
    let (_, ca) = certificate_authority();
    let e = ClientBuilder::new("rediss://127.0.0.1:6380")
        .tls_root_certificate(ca.as_bytes())
        .tls_client_certificate(ca.as_bytes(), "not a key")
        .register("tls-bad-key")
        .unwrap_err();
    assert!(
        matches!(&e, LockError::InvalidConfig { reason } if reason.contains("key")),
        "{e:?}"
    );
}

#[test]
fn a_root_certificate_that_is_not_pem_is_invalid_config() {
    install_provider();
    let e = ClientBuilder::new("rediss://127.0.0.1:6380")
        .tls_root_certificate("not a certificate")
        .register("tls-bad-pem")
        .unwrap_err();
    assert!(matches!(e, LockError::InvalidConfig { .. }), "{e:?}");
}
