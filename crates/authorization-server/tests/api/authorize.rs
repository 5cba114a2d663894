use test_client::REDIRECT_URI;

use crate::helpers::{authorize_params, json, location, param, spawn};

#[tokio::test]
async fn a_valid_request_redirects_with_code_state_and_iss() {
    let server = spawn(&[]).await;
    let response = server.authorize(&authorize_params("epoch_time")).await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (target, pairs) = location(&response);
    assert_eq!(target, REDIRECT_URI);
    assert_eq!(param(&pairs, "state"), Some("st4te"));
    assert_eq!(param(&pairs, "iss"), Some("http://localhost:8081"));
    let code = param(&pairs, "code").unwrap();
    assert!(code.len() >= 43, "a code carries at least 256 bits: {code}");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_answered_without_redirect() {
    let server = spawn(&[]).await;
    let mut params = authorize_params("epoch_time");
    params.retain(|(k, _)| *k != "redirect_uri");
    params.push(("redirect_uri", "https://evil.example/callback".into()));
    let response = server.authorize(&params).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert_eq!(json(response).await["error"], "invalid_request");
}

#[tokio::test]
async fn an_unknown_client_is_answered_without_redirect() {
    let server = spawn(&[]).await;
    let mut params = authorize_params("epoch_time");
    params.retain(|(k, _)| *k != "client_id");
    params.push(("client_id", "9999".into()));
    let response = server.authorize(&params).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn other_errors_come_back_by_redirect_with_state_and_iss() {
    let server = spawn(&[]).await;
    for (scope, expected) in [
        ("admin", "invalid_scope"),
        ("current_time epoch_time", "invalid_scope"),
    ] {
        let response = server.authorize(&authorize_params(scope)).await;
        assert_eq!(response.status(), 302);
        let (target, pairs) = location(&response);
        assert_eq!(target, REDIRECT_URI);
        assert_eq!(param(&pairs, "error"), Some(expected));
        assert!(param(&pairs, "error_description").is_some());
        assert_eq!(param(&pairs, "state"), Some("st4te"));
        assert_eq!(param(&pairs, "iss"), Some("http://localhost:8081"));
        assert_eq!(param(&pairs, "code"), None);
    }
}

#[tokio::test]
async fn a_plain_pkce_request_is_refused() {
    let server = spawn(&[]).await;
    let mut params = authorize_params("epoch_time");
    params.retain(|(k, _)| *k != "code_challenge_method");
    params.push(("code_challenge_method", "plain".into()));
    let (_, pairs) = location(&server.authorize(&params).await);
    assert_eq!(param(&pairs, "error"), Some("invalid_request"));
}

#[tokio::test]
async fn a_wrong_resource_is_invalid_target() {
    let server = spawn(&[]).await;
    let mut params = authorize_params("epoch_time");
    params.push(("resource", "http://localhost:8082/current_time".into()));
    let (_, pairs) = location(&server.authorize(&params).await);
    assert_eq!(param(&pairs, "error"), Some("invalid_target"));
}
