//! Bring your own client: a lock client built from the `redis::Client` or
//! `redis::ConnectionInfo` an application already has uses its address, credentials and
//! database.

use std::time::Duration;

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::{RedisServer, owner_token};

const PASSWORD: &str = "own-client-s3cret";

#[tokio::test]
async fn a_client_built_from_the_applications_redis_client_uses_its_settings() {
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    // Database 3, with the password: what the application's own client uses.
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/3", server.port());
    let redis = redis::Client::open(url.as_str()).unwrap();
    ClientBuilder::from_redis_client(&redis)
        .register("own-client")
        .unwrap();
    ClientBuilder::from_connection_info(redis.get_connection_info().clone())
        .register("own-info")
        .unwrap();

    let mut conn = redis.get_connection().unwrap();
    for client in ["own-client", "own-info"] {
        let lock = Lock::with_client(client, "job")
            .unwrap()
            .expire(Duration::from_secs(30));
        let guard = lock.acquire(None).await.unwrap();
        // In database 3, where the application's connection finds it.
        assert_eq!(
            owner_token(&mut conn, "lock:{job}").as_deref(),
            Some(guard.token()),
            "{client}"
        );
        let blocking = lock.clone();
        tokio::task::spawn_blocking(move || {
            assert!(blocking.try_acquire_blocking().unwrap().is_none());
        })
        .await
        .unwrap();
        guard.release().await.unwrap();
        assert_eq!(owner_token(&mut conn, "lock:{job}"), None, "{client}");
    }
}
