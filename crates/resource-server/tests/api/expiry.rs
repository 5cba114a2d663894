//! Zero leeway on `exp`, measured with sub-second precision by the injected clock.

use std::time::Duration;

use oauth::Scope;

use crate::helpers::*;

#[tokio::test]
async fn valid_half_a_second_before_exp() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice"); // exp = START + 5
    app.clock.advance(Duration::from_millis(4_500));
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn refused_exactly_at_exp() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    app.clock.advance(Duration::from_secs(5));
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("expired"), "{description}");
}

#[tokio::test]
async fn refused_a_millisecond_after_exp() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    app.clock.advance(Duration::from_millis(5_001));
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn refused_when_expired_by_one_second() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::CurrentTime, "alice");
    app.clock.advance(Duration::from_secs(6));
    let response = app.get("/current_time?user=alice", Some(&token)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("expired"), "{description}");
}
