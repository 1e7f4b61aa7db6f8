//! `crate = "..."`: the attribute works through a renamed dependency.

use redis_locked_renamed::{async_holder, sync_holder};
use redis_locked_tests::{RedisServer, lock_keys};

#[tokio::test]
async fn the_attribute_works_through_a_renamed_dependency() {
    let server = RedisServer::start();
    locks::register("renamed", &server.url()).unwrap();
    let mut conn = server.connection();
    let owner = tokio::task::spawn_blocking({
        let mut conn = server.connection();
        move || {
            sync_holder(7, || {
                redis::cmd("GET")
                    .arg("lock:{renamed:7}")
                    .query(&mut conn)
                    .unwrap()
            })
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert!(owner.is_some(), "the key is held while the sync body runs");
    let first = async_holder(7).await.unwrap();
    let second = async_holder(7).await.unwrap();
    assert!(second > first, "fencing tokens grow: {first} then {second}");
    assert!(lock_keys(&mut conn).is_empty(), "released after each call");
}
