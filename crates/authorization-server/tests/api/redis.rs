//! Replicas sharing a real Redis: codes redeemable once across replicas, races, faults.

use std::time::Duration;

use crate::helpers::{json, redeem_form, spawn, TestServer};
use crate::redis_server::RedisServer;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB239XB79YpCyor5Y7sVZlrGt5D9ZEu91fFcIVmaYkge\n-----END PRIVATE KEY-----\n";

fn key_file() -> String {
    let path = std::env::temp_dir().join(format!("as-key-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, PEM).unwrap();
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&path, private).unwrap();
    path.display().to_string()
}

async fn replicas(redis: &RedisServer) -> (TestServer, TestServer) {
    replicas_with(redis, &[]).await
}

/// Two replicas sharing `redis` and one signing key, with `extra` settings.
async fn replicas_with(
    redis: &RedisServer,
    extra: &[(&'static str, &str)],
) -> (TestServer, TestServer) {
    let key = key_file();
    let url = redis.url();
    let mut vars = vec![
        ("REDIS_URL", url.as_str()),
        ("SIGNING_KEY_FILE", key.as_str()),
    ];
    vars.extend_from_slice(extra);
    let pair = (spawn(&vars).await, spawn(&vars).await);
    // read at start-up: no longer needed
    std::fs::remove_file(&key).unwrap();
    pair
}

async fn redeem(server: &TestServer, code: &str) -> reqwest::Response {
    server.token(&redeem_form(code)).await
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_code_from_one_replica_is_redeemed_once_at_another() {
    let redis = RedisServer::start();
    let (a, b) = replicas(&redis).await;
    let code = a.code("epoch_time").await;
    assert_eq!(redeem(&b, &code).await.status(), 200);
    let replay = redeem(&a, &code).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(json(replay).await["error"], "invalid_grant");

    let jwks = |server: &TestServer| {
        let url = format!("{}/.well-known/jwks.json", server.base);
        let http = server.http.clone();
        async move { json(http.get(url).send().await.unwrap()).await }
    };
    assert_eq!(
        jwks(&a).await,
        jwks(&b).await,
        "replicas with one key publish one JWKS"
    );
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn two_hundred_racing_redemptions_of_one_code_yield_one_token() {
    let redis = RedisServer::start();
    let (a, b) = replicas(&redis).await;
    let code = a.code("current_time").await;
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..200 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (client, form) = (server.client.clone(), redeem_form(&code));
        attempts.spawn(async move { client.token(&form).await.unwrap().status().as_u16() });
    }
    let statuses: Vec<u16> = attempts.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 199);
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn codes_are_stored_hashed_with_their_expiry_in_redis() {
    let redis = RedisServer::start();
    let (a, _) = replicas(&redis).await;
    let code = a.code("epoch_time").await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("oauth:code:*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    // the index of live codes (what MAX_LIVE_CODES counts) holds the hashed key only
    let live: Vec<String> = redis::cmd("ZRANGE")
        .arg("oauth:codes:live")
        .arg(0)
        .arg(-1)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(live, keys);
    assert!(!keys[0].contains(&code), "the key is a hash, not the code");
    let value: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!value.contains(&code));
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((29_000..=30_000).contains(&ttl_ms), "{ttl_ms}");
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_expires_codes_itself() {
    let redis = RedisServer::start();
    let url = redis.url();
    let server = spawn(&[
        ("REDIS_URL", url.as_str()),
        ("AUTHORIZATION_CODE_TTL_SECONDS", "1"),
    ])
    .await;
    let code = server.code("epoch_time").await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let response = redeem(&server, &code).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_down_answers_503_and_recovery_is_automatic() {
    let mut redis = RedisServer::start();
    let (a, _) = replicas(&redis).await;
    let code = a.code("epoch_time").await;
    let ready = |server: &TestServer| {
        let (http, url) = (server.http.clone(), format!("{}/readyz", server.base));
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&a).await, 200);

    redis.stop();
    let token = redeem(&a, &code).await;
    assert_eq!(token.status(), 503);
    assert_eq!(json(token).await["error"], "temporarily_unavailable");
    let authorize = a
        .authorize(&crate::helpers::authorize_params("epoch_time"))
        .await;
    assert_eq!(authorize.status(), 302);
    let (_, pairs) = crate::helpers::location(&authorize);
    assert_eq!(
        crate::helpers::param(&pairs, "error"),
        Some("temporarily_unavailable")
    );
    assert_eq!(crate::helpers::param(&pairs, "code"), None);
    assert_eq!(ready(&a).await, 503);
    let health = a.get("/healthz").await;
    assert_eq!(health.status(), 200);

    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ready(&a).await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = a.code("epoch_time").await;
    assert_eq!(redeem(&a, &code).await.status(), 200);
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_tls_redis_is_used_when_its_ca_file_is_trusted() {
    let redis = RedisServer::start_tls();
    let url = redis.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let ca_file = redis.ca_file().unwrap_or_default();
    let server = spawn(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_CA_FILE", ca_file.as_str()),
    ])
    .await;
    let code = server.code("epoch_time").await;
    assert_eq!(redeem(&server, &code).await.status(), 200);
    let replay = redeem(&server, &code).await;
    assert_eq!(json(replay).await["error"], "invalid_grant");

    // Without the CA file the self-signed certificate is not trusted: no code is issued, and
    // readiness says so.
    let untrusting = spawn(&[("REDIS_URL", url.as_str())]).await;
    let ready = untrusting.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let token = redeem(&untrusting, &code).await;
    assert_eq!(token.status(), 503);
    assert_eq!(json(token).await["error"], "temporarily_unavailable");
}

/// The scaled topology's way in: an ACL user named in the URL, its password from a file.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_redis_user_whose_password_comes_from_a_file() {
    let redis = RedisServer::start_with_user("oauth", "s3cr3t");
    let url = redis.url().replacen("redis://", "redis://oauth@", 1);
    let password_file = |password: &str| {
        let path = std::env::temp_dir().join(format!("redis-pw-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, format!("{password}\n")).unwrap();
        path.display().to_string()
    };
    let right = password_file("s3cr3t");
    let server = spawn(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_PASSWORD_FILE", right.as_str()),
    ])
    .await;
    let code = server.code("epoch_time").await;
    assert_eq!(redeem(&server, &code).await.status(), 200);
    let replay = redeem(&server, &code).await;
    assert_eq!(json(replay).await["error"], "invalid_grant");

    let wrong = password_file("guess");
    let refused = spawn(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_PASSWORD_FILE", wrong.as_str()),
    ])
    .await;
    let ready = refused.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let token = redeem(&refused, &code).await;
    assert_eq!(token.status(), 503);
    for file in [right, wrong] {
        std::fs::remove_file(file).unwrap();
    }
}

/// `MAX_LIVE_CODES` counts the codes of every replica; redeemed and expired codes give their
/// places back.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn max_live_codes_holds_across_replicas() {
    let redis = RedisServer::start();
    let (a, b) = replicas_with(&redis, &[("MAX_LIVE_CODES", "2")]).await;
    let first = a.code("epoch_time").await;
    b.code("epoch_time").await;
    for server in [&a, &b] {
        let refused = server
            .authorize(&crate::helpers::authorize_params("epoch_time"))
            .await;
        let (_, pairs) = crate::helpers::location(&refused);
        assert_eq!(
            crate::helpers::param(&pairs, "error"),
            Some("temporarily_unavailable")
        );
        assert_eq!(crate::helpers::param(&pairs, "code"), None);
    }
    assert_eq!(redeem(&b, &first).await.status(), 200);
    let third = a.code("epoch_time").await;
    assert_eq!(redeem(&a, &third).await.status(), 200);
    // the index expires codes by the replica's clock (Redis drops the keys by its own)
    a.advance(Duration::from_secs(31));
    a.code("epoch_time").await;
    a.code("epoch_time").await;
}
