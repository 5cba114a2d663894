use crate::helpers::{json, spawn};

#[tokio::test]
async fn metadata_is_rfc8414_with_the_configured_issuer() {
    let server = spawn(&[("ISSUER", "https://as.example.com")]).await;
    let response = server
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let metadata = json(response).await;
    assert_eq!(metadata["issuer"], "https://as.example.com");
    assert_eq!(
        metadata["authorization_endpoint"],
        "https://as.example.com/authorize"
    );
    assert_eq!(metadata["token_endpoint"], "https://as.example.com/token");
    assert_eq!(
        metadata["jwks_uri"],
        "https://as.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["authorization_code"])
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        metadata["scopes_supported"],
        serde_json::json!(["current_time", "epoch_time"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
}

#[tokio::test]
async fn the_issuer_never_comes_from_the_host_header() {
    let server = spawn(&[]).await;
    let metadata = json(
        server
            .http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                server.base
            ))
            .header("Host", "evil.example")
            .header("X-Forwarded-Host", "evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(metadata["issuer"], "http://localhost:8081");
}

#[tokio::test]
async fn the_jwks_max_age_is_configurable() {
    let server = spawn(&[("JWKS_MAX_AGE_SECONDS", "42")]).await;
    let response = server.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=42");
}

#[tokio::test]
async fn jwks_publishes_one_public_signing_key_with_cache_control() {
    for algorithm in ["EdDSA", "ES256", "RS256"] {
        let server = spawn(&[("SIGNING_ALGORITHM", algorithm)]).await;
        let response = server.get("/.well-known/jwks.json").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "public, max-age=5");
        let jwks = json(response).await;
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let key = &keys[0];
        assert_eq!(key["alg"], algorithm);
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "{algorithm} publishes {private}"
            );
        }
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let server = spawn(&[]).await;
    let missing = server.get("/nope").await;
    assert_eq!(missing.status(), 404);
    assert!(json(missing).await["error"].is_string());
    let get_token = server.get("/token").await;
    assert_eq!(get_token.status(), 405);
    assert_eq!(json(get_token).await["error"], "invalid_request");
    let health = server.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
}
