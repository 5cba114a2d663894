use std::time::{Duration, Instant};

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
    let mut system = System::start().await;
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

    // The resource server refetches the JWKS on the unknown kid (at most once a second here).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = system
            .get(format!("{}/epoch_time?user=alice", system.webapp))
            .await;
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after 5 s",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
