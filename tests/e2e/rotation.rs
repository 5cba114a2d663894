use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth::{AccessTokenClaims, Scope};

use crate::system::System;

/// A valid access token for `/epoch_time`, signed now with the Ed25519 PEM key `pem` under `kid`:
/// what the holder of a stolen key can make.
fn forge_token(system: &System, pem: &[u8], kid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = AccessTokenClaims {
        iss: system.authorization_server.clone(),
        sub: oauth::UserName::parse("alice").unwrap(),
        aud: format!("{}{}", system.resource_server, Scope::EpochTime.path()),
        client_id: "1234".into(),
        scope: Scope::EpochTime,
        iat: now,
        exp: now + 5,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(oauth::claims::ACCESS_TOKEN_TYPE.to_owned());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_pem(pem).unwrap()).unwrap()
}

async fn epoch_time_with(system: &System, token: &str) -> reqwest::Response {
    system
        .http
        .get(format!("{}/epoch_time?user=alice", system.resource_server))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The documented rotation procedure, run by its script, while full user calls keep flowing
/// through the webapp: not one may fail; once the script is done, the retired key is refused by
/// the resource server. The script makes its keys with `openssl`: ignored by a plain
/// `cargo test`, run by `cargo test -- --include-ignored` (as CI does), failing without it.
#[tokio::test]
#[ignore = "needs openssl"]
async fn rotating_the_signing_key_under_load_fails_no_call() {
    let dir = std::env::temp_dir().join(format!("e2e-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(dir.join("first.pem"))
        .status();
    assert!(
        key.is_ok_and(|status| status.success()),
        "openssl genpkey failed: `apt-get install openssl`, or run without --include-ignored"
    );
    let dir_str = dir.display().to_string();
    let system = System::start_with(&[("SIGNING_KEYS_DIR", dir_str.as_str())]).await;
    let jwks_url = format!("{}/.well-known/jwks.json", system.authorization_server);
    let kid_before: serde_json::Value = system.get(jwks_url.clone()).await.json().await.unwrap();
    let first_pem = std::fs::read(dir.join("first.pem")).unwrap();
    let first_kid = kid_before["keys"][0]["kid"].as_str().unwrap().to_owned();
    let forged = forge_token(&system, &first_pem, &first_kid);
    assert_eq!(
        epoch_time_with(&system, &forged).await.status(),
        200,
        "a token of the first key is valid before the rotation"
    );

    let stop = Arc::new(AtomicBool::new(false));
    // Calls answered so far, by all workers.
    let (answered, mut calls) = tokio::sync::watch::channel(0u32);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (http, stop, answered) = (system.http.clone(), stop.clone(), answered.clone());
        let url = format!("{}/epoch_time?user=user{worker}", system.webapp);
        workers.spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let response = http.get(&url).send().await.unwrap();
                answered.send_modify(|calls| *calls += 1);
                if response.status() == 200 {
                    ok += 1;
                } else {
                    failed.push(format!(
                        "{} {}",
                        response.status(),
                        response.text().await.unwrap()
                    ));
                }
            }
            (ok, failed)
        });
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rotate-signing-key.sh");
    let rotation = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args([script, &dir_str, "rotate"])
            .env("PUBLISH_WAIT", "3")
            .env("RETIRE_WAIT", "7")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        rotation.status.success(),
        "{}",
        String::from_utf8_lossy(&rotation.stderr)
    );
    // the script waited for the retirement to reach the resource server (its default wait)
    let forged = forge_token(&system, &first_pem, &first_kid);
    let response = epoch_time_with(&system, &forged).await;
    assert_eq!(response.status(), 401, "the retired key is refused");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    // a little more load after the old key is gone: counted in calls, not waited for in seconds
    let more = *calls.borrow_and_update() + 40;
    let load = tokio::time::timeout(Duration::from_secs(30), calls.wait_for(|n| *n >= more));
    load.await.expect("the load stopped").unwrap();
    stop.store(true, Ordering::Relaxed);

    let (mut ok, mut failed) = (0, Vec::new());
    for (worker_ok, worker_failed) in workers.join_all().await {
        ok += worker_ok;
        failed.extend(worker_failed);
    }
    let kid_after: serde_json::Value = system.get(jwks_url).await.json().await.unwrap();
    assert_ne!(
        kid_before["keys"][0]["kid"], kid_after["keys"][0]["kid"],
        "the key did rotate"
    );
    assert_eq!(
        kid_after["keys"].as_array().unwrap().len(),
        1,
        "the old key is retired"
    );
    assert!(
        failed.is_empty(),
        "{} of {} calls failed: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 20, "too little load to prove anything: {ok} calls");
    let _ = std::fs::remove_dir_all(dir);
}
