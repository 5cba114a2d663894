//! Every refusal, with its status and `WWW-Authenticate` challenge (RFC 6750 §3.1).

use jsonwebtoken::{Algorithm, EncodingKey};
use oauth::Scope;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn no_authorization_header_gets_a_bare_challenge() {
    let app = TestApp::spawn().await;
    let response = app.get("/epoch_time?user=alice", None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"resource-server\""
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(app.jwks.fetches(), 0);
}

/// RFC 6750 §3.1: "attempted using an unsupported authentication method" is answered like no
/// credentials at all: no error code.
#[tokio::test]
async fn another_authentication_scheme_gets_a_bare_challenge() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/epoch_time?user=alice", app.base))
        .basic_auth("1234", Some("qwerty"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"resource-server\""
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(app.jwks.fetches(), 0);
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    let response = app
        .get(
            &format!("/epoch_time?user=alice&access_token={token}"),
            None,
        )
        .await;
    assert_refused(response, 400, "invalid_request").await;
    // also when a header carries it too
    let response = app
        .get(
            &format!("/epoch_time?user=alice&access_token={token}"),
            Some(&token),
        )
        .await;
    assert_refused(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn malformed_authorization_headers_are_invalid_requests() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    let url = format!("{}/epoch_time?user=alice", app.base);
    let requests = [
        app.client
            .get(&url)
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", format!("Bearer {token}")),
        app.client.get(&url).header("authorization", "Bearer"),
        app.client.get(&url).header("authorization", "Bearer a\"b"),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        assert_refused(response, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn the_user_parameter_is_required_valid_and_single() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    for query in [
        "",
        "?user=",
        "?user=al%20ice",
        "?user=%C3%A9",
        "?user=alice&user=alice",
    ] {
        let response = app.get(&format!("/epoch_time{query}"), Some(&token)).await;
        assert_refused(response, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = TestApp::spawn().await;
    let claims = serde_json::to_value(claims(Scope::EpochTime, "alice", START)).unwrap();
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": app.key.kid});
    for signature in ["", "AAAA"] {
        let token = raw_token(&header, &claims, signature);
        let response = app.get("/epoch_time?user=alice", Some(&token)).await;
        assert_refused(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = TestApp::spawn().await;
    let mut header = app.key.header();
    header.alg = Algorithm::HS256;
    let secret = EncodingKey::from_secret(&app.key.public_bytes());
    let token =
        jsonwebtoken::encode(&header, &claims(Scope::EpochTime, "alice", START), &secret).unwrap();
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("algorithm"), "{description}");
}

#[tokio::test]
async fn a_different_key_with_the_trusted_kid_is_refused() {
    let app = TestApp::spawn().await;
    let impostor = TestKey::generate(&app.key.kid);
    let token = impostor.token(Scope::EpochTime, "alice", START);
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("signature"), "{description}");
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let app = TestApp::spawn().await;
    let stranger = TestKey::generate("unknown-kid");
    let token = stranger.token(Scope::EpochTime, "alice", START);
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("kid"), "{description}");
}

#[tokio::test]
async fn a_token_without_kid_is_refused() {
    let app = TestApp::spawn().await;
    let mut header = app.key.header();
    header.kid = None;
    let token = app
        .key
        .sign(&header, &claims(Scope::EpochTime, "alice", START));
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    let parts: Vec<&str> = token.split('.').collect();
    let forged = serde_json::to_value(claims(Scope::EpochTime, "mallory", START)).unwrap();
    let forged = raw_token(&json!({}), &forged, "");
    let forged_payload = forged.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let response = app.get("/epoch_time?user=mallory", Some(&tampered)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("signature"), "{description}");
}

#[tokio::test]
async fn a_token_that_is_not_an_access_token_is_refused() {
    let app = TestApp::spawn().await;
    for typ in [Some("JWT"), None] {
        let mut header = app.key.header();
        header.typ = typ.map(str::to_owned);
        let token = app
            .key
            .sign(&header, &claims(Scope::EpochTime, "alice", START));
        let response = app.get("/epoch_time?user=alice", Some(&token)).await;
        let description = assert_refused(response, 401, "invalid_token").await;
        assert!(description.contains("typ"), "{description}");
    }
}

#[tokio::test]
async fn garbage_is_an_invalid_token() {
    let app = TestApp::spawn().await;
    for token in ["abc", "a.b.c", "a.b.c.d"] {
        let response = app.get("/epoch_time?user=alice", Some(token)).await;
        assert_refused(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let app = TestApp::spawn().await;
    let mut claims = claims(Scope::EpochTime, "alice", START);
    claims.iss = "http://evil.example".to_owned();
    let token = app.key.sign(&app.key.header(), &claims);
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("issuer"), "{description}");
}

#[tokio::test]
async fn a_token_for_a_foreign_audience_is_refused() {
    let app = TestApp::spawn().await;
    let mut claims = claims(Scope::EpochTime, "alice", START);
    claims.aud = "http://evil.example/epoch_time".to_owned();
    let token = app.key.sign(&app.key.header(), &claims);
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn aud_and_scope_must_agree() {
    let app = TestApp::spawn().await;
    let mut claims = claims(Scope::EpochTime, "alice", START);
    claims.scope = Scope::CurrentTime;
    let token = app.key.sign(&app.key.header(), &claims);
    for path in ["/epoch_time?user=alice", "/current_time?user=alice"] {
        let response = app.get(path, Some(&token)).await;
        assert_refused(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn a_token_for_the_other_endpoint_has_insufficient_scope() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::CurrentTime, "alice");
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("scope=\"epoch_time\""), "{challenge}");
    assert_refused(response, 403, "insufficient_scope").await;

    let token = app.token(Scope::EpochTime, "alice");
    let response = app.get("/current_time?user=alice", Some(&token)).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("scope=\"current_time\""), "{challenge}");
    assert_refused(response, 403, "insufficient_scope").await;
}

#[tokio::test]
async fn a_token_of_another_user_has_insufficient_scope() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    let response = app.get("/epoch_time?user=bob", Some(&token)).await;
    let description = assert_refused(response, 403, "insufficient_scope").await;
    assert!(description.contains("another user"), "{description}");
}

#[tokio::test]
async fn a_token_issued_to_another_client_is_refused() {
    let app = TestApp::spawn().await;
    let mut claims = claims(Scope::EpochTime, "alice", START);
    claims.client_id = "5678".into();
    let token = app.key.sign(&app.key.header(), &claims);
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    let description = assert_refused(response, 401, "invalid_token").await;
    assert!(description.contains("client"), "{description}");
}

#[tokio::test]
async fn missing_claims_are_refused() {
    let app = TestApp::spawn().await;
    for missing in ["exp", "iss", "aud", "sub", "client_id", "scope"] {
        let mut claims = serde_json::to_value(claims(Scope::EpochTime, "alice", START)).unwrap();
        claims.as_object_mut().unwrap().remove(missing);
        let token = app.key.sign(&app.key.header(), &claims);
        let response = app.get("/epoch_time?user=alice", Some(&token)).await;
        assert_refused(response, 401, "invalid_token").await;
    }
}
