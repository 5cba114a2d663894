//! All three services over HTTPS, each trusting a development CA through `TLS_CA_FILE`: every
//! hop of a full call (webapp → authorization server, resource server → JWKS, webapp → resource
//! server) is TLS, and a client that does not trust the CA gets nowhere.

use std::path::PathBuf;

use crate::system::System;

/// The development CA and certificates of the `certs` subcommand; the webapp's certificate (for
/// `127.0.0.1` and `localhost`) serves all three here.
struct Pki(PathBuf);

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("e2e-pki-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        common::dev_certs::ensure(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The three services over TLS; the PKI lives as long as the test keeps it.
async fn start() -> (System, Pki) {
    let pki = Pki::new();
    let system = System::start_tls(
        &pki.file("webapp.pem"),
        &pki.file("webapp-key.pem"),
        &pki.file("ca.pem"),
    )
    .await;
    (system, pki)
}

#[tokio::test]
async fn a_full_call_runs_over_tls_on_every_hop() {
    let (system, _pki) = start().await;
    assert!(system.webapp.starts_with("https://"), "{}", system.webapp);
    for endpoint in ["epoch_time", "current_time"] {
        let response = system
            .get(format!("{}/{endpoint}?user=alice", system.webapp))
            .await;
        assert_eq!(response.status(), 200, "{endpoint}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["user"], "alice");
        assert!(body.get(endpoint).is_some(), "{body}");
    }
    // the issuer the tokens carry is the https one
    let metadata: serde_json::Value = system
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            system.authorization_server
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], system.authorization_server.as_str());
}

#[tokio::test]
async fn clients_that_do_not_trust_the_ca_or_speak_clear_text_get_nowhere() {
    let (system, _pki) = start().await;
    let untrusting = reqwest::Client::new();
    for base in [
        &system.webapp,
        &system.authorization_server,
        &system.resource_server,
    ] {
        let refused = untrusting.get(format!("{base}/healthz")).send().await;
        assert!(refused.is_err(), "{base}: {refused:?}");
        let clear_text = base.replacen("https://", "http://", 1);
        let refused = untrusting.get(format!("{clear_text}/healthz")).send().await;
        assert!(refused.is_err(), "{clear_text}: {refused:?}");
    }
}
