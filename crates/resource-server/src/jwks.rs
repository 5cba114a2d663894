//! The cache of the authorization server's public keys (modelled on crates.io's OIDC key store).
//!
//! - Keys are fetched when first needed, not at start-up: the resource server starts, and answers
//!   `/healthz`, while the authorization server is down.
//! - Keys are cached by `kid`. A `kid` that is not cached triggers a refetch, at most once per
//!   `refetch_interval` (a failed fetch counts too), and single-flight: concurrent requests wait
//!   for the one fetch in progress instead of starting their own.
//! - A successful fetch replaces the whole key set: a key the authorization server stopped
//!   publishing stops being trusted.
//! - Only keys usable with the pinned algorithm are kept: right key type and curve, `alg` (when
//!   present) equal to the pinned algorithm, `use` (when present) `sig`, RSA moduli of at least
//!   2048 bits. A `kid` published twice is ambiguous and dropped.
//! - When the JWKS cannot be fetched (unreachable, timeout, non-2xx, not a JWKS), a request whose
//!   `kid` is not cached gets [`Error::KeysUnavailable`] (503): it is not the token's fault.
//!   Cached keys keep working.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use common::request_id::{self, RequestId};
use common::Clock;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use serde::Deserialize;

use crate::error::Error;

/// A JWKS larger than this is refused (ours holds a handful of keys).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Least RSA modulus size (RFC 7518 §3.3: 2048 bits at least).
const MIN_RSA_MODULUS_BYTES: usize = 2048 / 8;

type KeySet = HashMap<String, Arc<DecodingKey>>;

pub struct KeyCache {
    jwks_url: String,
    client: reqwest::Client,
    algorithm: Algorithm,
    refetch_interval: Duration,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching (single flight); remembers the last fetch attempt.
    fetch: tokio::sync::Mutex<Option<LastFetch>>,
}

#[derive(Debug, Clone, Copy)]
struct LastFetch {
    at: SystemTime,
    succeeded: bool,
}

impl KeyCache {
    pub fn new(
        jwks_url: String,
        client: reqwest::Client,
        algorithm: Algorithm,
        refetch_interval: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            jwks_url,
            client,
            algorithm,
            refetch_interval,
            clock,
            keys: RwLock::new(Arc::new(KeySet::new())),
            fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// The trusted key named `kid`, fetching the JWKS when `kid` is unknown and the last fetch is
    /// older than the refetch interval. A fetch carries `request_id`, the id of the request that
    /// needed it, so the authorization server's log shows which call made it.
    pub async fn key(&self, kid: &str, request_id: &RequestId) -> Result<Arc<DecodingKey>, Error> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last_fetch = self.fetch.lock().await;
        // Another request may have fetched while this one waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if let Some(last) = *last_fetch {
            let elapsed = self.clock.now().duration_since(last.at).unwrap_or_default();
            if elapsed < self.refetch_interval {
                return Err(if last.succeeded {
                    unknown_kid()
                } else {
                    Error::KeysUnavailable
                });
            }
        }
        let fetched = self.fetch_key_set(request_id).await;
        *last_fetch = Some(LastFetch {
            at: self.clock.now(),
            succeeded: fetched.is_ok(),
        });
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched the authorization server's JWKS");
                let found = keys.get(kid).cloned();
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                found.ok_or_else(unknown_kid)
            }
            Err(reason) => {
                tracing::warn!(url = %self.jwks_url, %reason, "cannot fetch the JWKS");
                Err(Error::KeysUnavailable)
            }
        }
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()));
        keys.get(kid).cloned()
    }

    async fn fetch_key_set(&self, request_id: &RequestId) -> Result<KeySet, String> {
        let mut request = self
            .client
            .get(&self.jwks_url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(value) = request_id.header_value() {
            request = request.header(request_id::HEADER, value);
        }
        let mut response = request
            .send()
            .await
            .map_err(|err| format!("request failed: {err}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err("the JWKS is too large".to_owned());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| format!("reading the body failed: {err}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("the JWKS is too large".to_owned());
            }
            body.extend_from_slice(&chunk);
        }
        parse_key_set(&body, self.algorithm)
    }
}

fn unknown_kid() -> Error {
    Error::InvalidToken("the token's kid names no key of the authorization server")
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

/// The keys of a JWKS document usable with `algorithm`, by `kid`. Keys we cannot use are skipped
/// (a JWKS may list keys for other purposes); a document that is not a JWKS is an error.
pub fn parse_key_set(body: &[u8], algorithm: Algorithm) -> Result<KeySet, String> {
    let raw: RawKeySet =
        serde_json::from_slice(body).map_err(|err| format!("not a JWKS: {err}"))?;
    let mut keys = KeySet::new();
    let mut ambiguous = Vec::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone().filter(|kid| !kid.is_empty()) else {
            continue;
        };
        let Some(key) = usable_key(&jwk, algorithm) else {
            continue;
        };
        if keys.insert(kid.clone(), Arc::new(key)).is_some() {
            ambiguous.push(kid);
        }
    }
    for kid in ambiguous {
        tracing::warn!("the JWKS publishes one kid twice; neither key is trusted");
        keys.remove(&kid);
    }
    Ok(keys)
}

fn key_algorithm_is(alg: KeyAlgorithm, pinned: Algorithm) -> bool {
    matches!(
        (alg, pinned),
        (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
            | (KeyAlgorithm::ES256, Algorithm::ES256)
            | (KeyAlgorithm::RS256, Algorithm::RS256)
    )
}

fn usable_key(jwk: &Jwk, algorithm: Algorithm) -> Option<DecodingKey> {
    if let Some(alg) = jwk.common.key_algorithm {
        if !key_algorithm_is(alg, algorithm) {
            return None;
        }
    }
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return None;
    }
    let type_fits = match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        _ => false,
    };
    if !type_fits {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    // Shapes the verifiers rely on (jsonwebtoken's EdDSA verifier slices the first 32 bytes).
    let shape_fits = match key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) => match algorithm {
            Algorithm::EdDSA => bytes.len() == 32,
            Algorithm::ES256 => bytes.len() == 65,
            _ => false,
        },
        DecodingKeyKind::RsaModulusExponent { n, .. } => {
            let significant = n.iter().skip_while(|byte| **byte == 0).count();
            significant >= MIN_RSA_MODULUS_BYTES
        }
    };
    shape_fits.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn parse(keys: serde_json::Value, algorithm: Algorithm) -> Vec<String> {
        let body = json!({ "keys": keys }).to_string();
        let mut kids: Vec<String> = parse_key_set(body.as_bytes(), algorithm)
            .unwrap()
            .into_keys()
            .collect();
        kids.sort();
        kids
    }

    #[test]
    fn keeps_only_keys_for_the_pinned_algorithm() {
        let keys = json!([
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "ok", "alg": "EdDSA", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "no-alg-no-use"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "other-alg", "alg": "ES256"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            {"kty": "OKP", "crv": "Ed25519", "x": X},
            {"kty": "oct", "k": X, "kid": "hmac"},
            {"kty": "oct", "k": X, "kid": "hmac-alg", "alg": "HS256"},
            {"kty": "EC", "crv": "P-256", "x": X, "y": X, "kid": "ec"},
            {"kty": "weird", "kid": "weird"},
        ]);
        assert_eq!(
            parse(keys.clone(), Algorithm::EdDSA),
            ["no-alg-no-use", "ok"]
        );
        assert_eq!(parse(keys, Algorithm::ES256), ["ec"]);
    }

    #[test]
    fn rsa_keys_need_2048_bits() {
        let small = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            [0xC5u8; 128],
        );
        let big = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            [0xC5u8; 256],
        );
        let keys = json!([
            {"kty": "RSA", "n": small, "e": "AQAB", "kid": "1024"},
            {"kty": "RSA", "n": big, "e": "AQAB", "kid": "2048", "alg": "RS256"},
        ]);
        assert_eq!(parse(keys, Algorithm::RS256), ["2048"]);
    }

    #[test]
    fn a_kid_published_twice_is_dropped() {
        let keys = json!([
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "dup"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "dup"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "single"},
        ]);
        assert_eq!(parse(keys, Algorithm::EdDSA), ["single"]);
    }

    #[test]
    fn a_document_that_is_not_a_jwks_is_an_error() {
        for bad in [&b"<html>"[..], b"{}", b"{\"keys\": 3}", b""] {
            assert!(parse_key_set(bad, Algorithm::EdDSA).is_err());
        }
    }
}
