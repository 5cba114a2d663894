use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

use test_client::{ClientIdentity, REDIRECT_URI};

use crate::helpers::{json, redeem_form, spawn, TestServer};

async fn assert_error(
    response: reqwest::Response,
    status: u16,
    error: &str,
) -> reqwest::header::HeaderMap {
    assert_eq!(response.status(), status);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(json(response).await["error"], error);
    headers
}

async fn verify(
    server: &TestServer,
    token: &str,
    algorithm: jsonwebtoken::Algorithm,
) -> serde_json::Value {
    let jwks: JwkSet = server
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, algorithm);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&["http://localhost:8082/epoch_time"]);
    validation.set_issuer(&["http://localhost:8081"]);
    // The server's clock is a test clock near real time; exp is checked by the resource server.
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims
}

#[tokio::test]
async fn a_code_is_exchanged_for_an_rfc9068_token_with_every_algorithm() {
    for (name, algorithm) in [
        ("EdDSA", jsonwebtoken::Algorithm::EdDSA),
        ("ES256", jsonwebtoken::Algorithm::ES256),
        ("RS256", jsonwebtoken::Algorithm::RS256),
    ] {
        let server = spawn(&[("SIGNING_ALGORITHM", name)]).await;
        let code = server.code("epoch_time").await;
        let response = server.token(&redeem_form(&code)).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["pragma"], "no-cache");
        let body = json(response).await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 5);
        assert_eq!(body["scope"], "epoch_time");
        let claims = verify(&server, body["access_token"].as_str().unwrap(), algorithm).await;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["client_id"], "1234");
        assert_eq!(claims["scope"], "epoch_time");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            5
        );
        assert!(claims["jti"].is_string());
    }
}

#[tokio::test]
async fn client_secret_post_works_too() {
    let server = spawn(&[]).await;
    let code = server.code("current_time").await;
    let mut form = redeem_form(&code);
    form.extend(ClientIdentity::default().form_credentials());
    let response = server
        .http
        .post(format!("{}/token", server.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["scope"], "current_time");
}

#[tokio::test]
async fn a_replayed_code_is_invalid_grant() {
    let server = spawn(&[]).await;
    let code = server.code("epoch_time").await;
    let form = redeem_form(&code);
    let first = server.token(&form).await;
    assert_eq!(first.status(), 200);
    let replay = server.token(&form).await;
    assert_error(replay, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    // the test clock can't move Redis's expiry (tested in redis.rs): the memory store here
    let server = spawn(&[("REDIS_URL", "")]).await;
    let code = server.code("epoch_time").await;
    server.advance(Duration::from_secs(30));
    let response = server.token(&redeem_form(&code)).await;
    assert_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_just_before_expiry_is_still_good() {
    let server = spawn(&[]).await;
    let code = server.code("epoch_time").await;
    server.advance(Duration::from_millis(29_900));
    let response = server.token(&redeem_form(&code)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_different_redirect_uri_is_invalid_grant_and_spends_the_code() {
    let server = spawn(&[]).await;
    let code = server.code("epoch_time").await;
    let mut form = redeem_form(&code);
    form.retain(|(k, _)| *k != "redirect_uri");
    form.push(("redirect_uri", format!("{REDIRECT_URI}/other")));
    let response = server.token(&form).await;
    assert_error(response, 400, "invalid_grant").await;
    let retry = server.token(&redeem_form(&code)).await;
    assert_error(retry, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_wrong_verifier_is_invalid_grant() {
    let server = spawn(&[]).await;
    let code = server.code("epoch_time").await;
    let mut form = redeem_form(&code);
    form.retain(|(k, _)| *k != "code_verifier");
    form.push(("code_verifier", URL_SAFE_NO_PAD.encode([7u8; 32])));
    let response = server.token(&form).await;
    assert_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_wrong_secret_is_401_invalid_client_with_a_basic_challenge() {
    let server = spawn(&[]).await;
    let code = server.code("epoch_time").await;
    let response = server.token_with_secret(&redeem_form(&code), "wrong").await;
    let headers = assert_error(response, 401, "invalid_client").await;
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    // a failed authentication does not spend the code
    let retry = server.token(&redeem_form(&code)).await;
    assert_eq!(retry.status(), 200);
}

#[tokio::test]
async fn a_wrong_post_secret_is_401_invalid_client() {
    let server = spawn(&[]).await;
    let mut form = redeem_form("whatever");
    form.push(("client_id", "1234".into()));
    form.push(("client_secret", "wrong".into()));
    let response = server
        .http
        .post(format!("{}/token", server.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    let headers = assert_error(response, 401, "invalid_client").await;
    assert!(headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn both_authentication_methods_at_once_is_invalid_request() {
    let server = spawn(&[]).await;
    let mut form = redeem_form("whatever");
    form.push(("client_secret", "qwerty".into()));
    let response = server.token(&form).await;
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_json_body_is_invalid_request() {
    let server = spawn(&[]).await;
    let response = server
        .http
        .post(format!("{}/token", server.base))
        .basic_auth("1234", Some("qwerty"))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"authorization_code"}"#)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn another_grant_type_is_unsupported() {
    let server = spawn(&[]).await;
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "x"),
    ];
    let response = server.token(&form).await;
    assert_error(response, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn repeated_wrong_secrets_make_that_address_wait_with_retry_after() {
    let server = spawn(&[]).await;
    let code = server.code("epoch_time").await;
    let form = redeem_form(&code);
    for attempt in 1..=5 {
        let response = server.token_with_secret(&form, "guess").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    // Now even the right secret must wait: the answer can't tell a good guess from a bad one.
    let throttled = server.token(&form).await;
    assert_eq!(throttled.status(), 429);
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1);
    assert_error(throttled, 429, "temporarily_unavailable").await;

    server.clock.advance(Duration::from_millis(999));
    let response = server.token(&form).await;
    assert_eq!(response.status(), 429, "a millisecond before the wait ends");
    server.clock.advance(Duration::from_millis(1));
    let response = server.token(&form).await;
    assert_eq!(
        response.status(),
        200,
        "after the wait the real secret works"
    );
}
