use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::clock::ManualClock;

use crate::system::System;

#[tokio::test]
async fn the_webapp_answers_503_quickly_when_the_resource_server_is_down() {
    let system = System::start_without_resource_server().await;
    let started = Instant::now();
    let response = system
        .get(format!("{}/epoch_time?user=alice", system.webapp))
        .await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["step"], "resource");
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn a_restarted_authorization_server_with_a_new_key_is_trusted_without_restarts() {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let mut system = System::start_on(clock.clone()).await;
    let jwks_url = format!("{}/.well-known/jwks.json", system.authorization_server);
    let old: serde_json::Value = system.get(jwks_url.clone()).await.json().await.unwrap();
    let response = system
        .get(format!("{}/epoch_time?user=alice", system.webapp))
        .await;
    assert_eq!(response.status(), 200);

    system.restart_authorization_server().await;
    let new: serde_json::Value = system.get(jwks_url).await.json().await.unwrap();
    assert_ne!(
        old["keys"][0]["kid"], new["keys"][0]["kid"],
        "a new key was expected"
    );

    // The resource server refetches the JWKS on the unknown kid at most once a second here: the
    // services' clock is moved past that second.
    clock.advance(Duration::from_secs(1));
    let response = system
        .get(format!("{}/epoch_time?user=alice", system.webapp))
        .await;
    assert_eq!(response.status(), 200, "the new key is not trusted");
}
