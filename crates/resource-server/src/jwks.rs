//! The cache of the authorization server's public keys (modelled on crates.io's OIDC key store).
//!
//! - Keys are fetched when first needed, not at start-up: the resource server starts, and answers
//!   `/healthz`, while the authorization server is down.
//! - Keys are cached by `kid`. A `kid` that is not cached triggers a refetch, at most once per
//!   `refetch_interval` (a failed fetch counts too), and single-flight: concurrent requests wait
//!   for the one fetch in progress instead of starting their own.
//! - A key set is fresh for the `max-age` of the response that brought it (`Cache-Control`,
//!   counted from when the fetch started): [`DEFAULT_MAX_AGE`] when the header gives none that
//!   parses, never more than [`MAX_MAX_AGE`] whatever it says. A request needing a key of a stale
//!   set refreshes it and waits for the answer; the requests arriving meanwhile are served from
//!   the stale set without waiting. No two fetches are closer than `refetch_interval`, so it is
//!   also the shortest max-age.
//! - A successful fetch replaces the whole key set: a key the authorization server stopped
//!   publishing stops being trusted within max-age + refetch interval (docs/scaling.md).
//! - Only keys usable with the pinned algorithm are kept: right key type and curve, `alg` (when
//!   present) equal to the pinned algorithm, `use` (when present) `sig`, RSA moduli of at least
//!   2048 bits. A `kid` published twice is ambiguous and dropped.
//! - When the JWKS cannot be fetched (unreachable, timeout, non-2xx, not a JWKS), a request whose
//!   `kid` is not cached gets [`Error::KeysUnavailable`] (503): it is not the token's fault.
//!   Cached keys keep working, stale ones too: the failure is logged and counted
//!   (`jwks_fetches_total{outcome="failed"}`) and the refresh retried after the refetch interval.
//!   A stale set has no cut-off: it stays trusted until a refresh succeeds, because refusing every
//!   token would turn an unreachable authorization server into a resource server outage. The
//!   price: a retired key stays trusted for as long as the JWKS cannot be fetched; alert on the
//!   failure counter.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::config::MAX_JWKS_MAX_AGE_SECONDS;
use common::http_client::HttpClient;
use common::request_id::{self, RequestId};
use common::Clock;
use http::header::{HeaderMap, ACCEPT, CACHE_CONTROL};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::verifying_key::VerifyingKey;

/// A JWKS larger than this is refused (ours holds a handful of keys).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How long a key set stays fresh when its response gives no usable `max-age` (the
/// authorization server's default `JWKS_MAX_AGE_SECONDS`).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5);

/// The longest `max-age` honoured: a hostile or mistaken header cannot pin a key for longer.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(MAX_JWKS_MAX_AGE_SECONDS);

type KeySet = HashMap<String, Arc<VerifyingKey>>;

/// What made the cache fetch the JWKS: the `reason` of `jwks_fetches_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// The token's `kid` is not in the set.
    UnknownKid,
    /// The set is older than its max-age.
    Expired,
}

impl FetchReason {
    pub const ALL: [FetchReason; 2] = [FetchReason::UnknownKid, FetchReason::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            FetchReason::UnknownKid => "unknown_kid",
            FetchReason::Expired => "expired",
        }
    }
}

pub struct KeyCache {
    jwks_url: String,
    client: HttpClient,
    algorithm: Algorithm,
    refetch_interval: Duration,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    keys: RwLock<Arc<CachedKeys>>,
    /// Held while fetching (single flight); remembers the last fetch attempt.
    fetch: tokio::sync::Mutex<Option<LastFetch>>,
}

/// The key set in use.
struct CachedKeys {
    keys: KeySet,
    fresh_until: SystemTime,
}

#[derive(Debug, Clone, Copy)]
struct LastFetch {
    at: SystemTime,
    succeeded: bool,
}

impl KeyCache {
    pub(crate) fn new(
        jwks_url: String,
        client: HttpClient,
        algorithm: Algorithm,
        refetch_interval: Duration,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Self {
        Self {
            jwks_url,
            client,
            algorithm,
            refetch_interval,
            clock,
            metrics,
            keys: RwLock::new(Arc::new(CachedKeys {
                keys: KeySet::new(),
                fresh_until: UNIX_EPOCH,
            })),
            fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// The trusted key named `kid`. The JWKS is fetched first when `kid` is unknown or the set
    /// stale, and the last fetch is older than the refetch interval. A fetch carries
    /// `request_id`, the id of the request that needed it, so the authorization server's log
    /// shows which call made it.
    pub async fn key(&self, kid: &str, request_id: &RequestId) -> Result<Arc<VerifyingKey>, Error> {
        let cached = self.cached();
        match cached.keys.get(kid) {
            Some(key) if self.clock.now() < cached.fresh_until => Ok(Arc::clone(key)),
            Some(stale) => match self.fetch.try_lock() {
                Ok(mut last_fetch) => {
                    self.refetch(kid, &mut last_fetch, FetchReason::Expired, request_id)
                        .await
                }
                // Another request is fetching: this one does not wait for it.
                Err(_) => Ok(Arc::clone(stale)),
            },
            None => {
                let mut last_fetch = self.fetch.lock().await;
                self.refetch(kid, &mut last_fetch, FetchReason::UnknownKid, request_id)
                    .await
            }
        }
    }

    /// With the fetch lock held: `kid` from a new fetch when one is due, from the set in use
    /// otherwise.
    async fn refetch(
        &self,
        kid: &str,
        last_fetch: &mut Option<LastFetch>,
        reason: FetchReason,
        request_id: &RequestId,
    ) -> Result<Arc<VerifyingKey>, Error> {
        // Another request may have fetched while this one waited for the lock.
        let cached = self.cached();
        let now = self.clock.now();
        if let Some(key) = cached.keys.get(kid).filter(|_| now < cached.fresh_until) {
            return Ok(Arc::clone(key));
        }
        let due = last_fetch.is_none_or(|last| {
            now.duration_since(last.at).unwrap_or_default() >= self.refetch_interval
        });
        if due {
            if let Some(fetched) = self.fetch_and_store(reason, request_id, last_fetch).await {
                return fetched.keys.get(kid).cloned().ok_or_else(unknown_kid);
            }
        }
        let last_fetch_succeeded = last_fetch.is_some_and(|last| last.succeeded);
        cached.keys.get(kid).cloned().ok_or_else(|| {
            if last_fetch_succeeded {
                unknown_kid()
            } else {
                Error::KeysUnavailable
            }
        })
    }

    /// Fetches the JWKS, records the attempt and, when it succeeds, makes it the set in use.
    async fn fetch_and_store(
        &self,
        reason: FetchReason,
        request_id: &RequestId,
        last_fetch: &mut Option<LastFetch>,
    ) -> Option<Arc<CachedKeys>> {
        // Freshness counts from the request: the answer may show the keys of any moment after it.
        let started = self.clock.now();
        let fetched = self.fetch_key_set(request_id).await;
        *last_fetch = Some(LastFetch {
            at: self.clock.now(),
            succeeded: fetched.is_ok(),
        });
        self.metrics.jwks_fetched(reason, fetched.is_ok());
        match fetched {
            Ok((keys, max_age)) => {
                let changed = !same_kids(&self.cached().keys, &keys);
                let fetched = Arc::new(CachedKeys {
                    keys,
                    fresh_until: started + max_age,
                });
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fetched);
                let (count, reason, max_age) =
                    (fetched.keys.len(), reason.as_str(), max_age.as_secs());
                // A refresh every max-age is routine; a new key set is worth a line.
                if changed {
                    tracing::info!(keys = count, reason, max_age, "fetched a new JWKS");
                } else {
                    tracing::debug!(keys = count, reason, max_age, "refreshed the JWKS");
                }
                Some(fetched)
            }
            Err(error) => {
                let (url, reason) = (&self.jwks_url, reason.as_str());
                tracing::warn!(%url, reason, %error, "cannot fetch the JWKS");
                None
            }
        }
    }

    fn cached(&self) -> Arc<CachedKeys> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The usable keys of the JWKS and how long they stay fresh.
    async fn fetch_key_set(&self, request_id: &RequestId) -> Result<(KeySet, Duration), String> {
        let mut request = http::Request::get(&self.jwks_url).header(ACCEPT, "application/json");
        if let Some(value) = request_id.header_value() {
            request = request.header(request_id::HEADER, value);
        }
        let request = request
            .body(Default::default())
            .map_err(|err| format!("invalid request: {err}"))?;
        let answer = self
            .client
            .send(request)
            .await
            .map_err(|err| format!("request failed: {err}"))?;
        if !answer.status.is_success() {
            return Err(format!("answered {}", answer.status));
        }
        let max_age = max_age(&answer.headers);
        Ok((parse_key_set(&answer.body, self.algorithm)?, max_age))
    }
}

fn same_kids(a: &KeySet, b: &KeySet) -> bool {
    a.len() == b.len() && a.keys().all(|kid| b.contains_key(kid))
}

/// How long a JWKS response may be used: the first `max-age` of its `Cache-Control` (RFC 9111
/// §5.2.2.1), at most [`MAX_MAX_AGE`]; [`DEFAULT_MAX_AGE`] when that is missing or does not parse.
/// Hand-written: no crate of the tree parses `Cache-Control`, and only this directive matters.
fn max_age(headers: &HeaderMap) -> Duration {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|directive| {
            let (name, value) = directive.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| delta_seconds(value.trim()))
        })
        .flatten()
        .map_or(DEFAULT_MAX_AGE, |max_age| max_age.min(MAX_MAX_AGE))
}

/// RFC 9111 §1.2.2 delta-seconds (digits only), quoted or not; a number too large for a `u64`
/// is as good as the largest one.
fn delta_seconds(value: &str) -> Option<Duration> {
    let digits = value
        .strip_prefix('"')
        .and_then(|quoted| quoted.strip_suffix('"'))
        .unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().map_or(Duration::MAX, Duration::from_secs))
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

fn usable_key(jwk: &Jwk, algorithm: Algorithm) -> Option<VerifyingKey> {
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
    VerifyingKey::new(&DecodingKey::from_jwk(jwk).ok()?, algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;
    use serde_json::json;

    fn max_age_of(values: &[&str]) -> Duration {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        max_age(&headers)
    }

    #[test]
    fn the_max_age_is_read_robustly() {
        let seconds = Duration::from_secs;
        for (values, expected) in [
            (&[][..], DEFAULT_MAX_AGE),
            (&["public, max-age=42"], seconds(42)),
            (&["Max-Age = 42 ,public"], seconds(42)),
            (&["max-age=\"42\""], seconds(42)),
            (&["max-age=0"], seconds(0)),
            (&["public", "max-age=42"], seconds(42)),
            (&["max-age=42, max-age=7"], seconds(42)),
            (&["max-age=300"], seconds(300)),
            (&["max-age=301"], MAX_MAX_AGE),
            (&["max-age=184467440737095516160000"], MAX_MAX_AGE),
            (&["s-maxage=42"], DEFAULT_MAX_AGE),
            (&["max-age"], DEFAULT_MAX_AGE),
            (&["max-age="], DEFAULT_MAX_AGE),
            (&["max-age=+42"], DEFAULT_MAX_AGE),
            (&["max-age=-1"], DEFAULT_MAX_AGE),
            (&["max-age=4.2"], DEFAULT_MAX_AGE),
            (&["max-age=\"42"], DEFAULT_MAX_AGE),
            (&["no-store"], DEFAULT_MAX_AGE),
            (&["max-age=soon, max-age=42"], DEFAULT_MAX_AGE),
        ] {
            assert_eq!(max_age_of(values), expected, "{values:?}");
        }
    }

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    /// P-256's base point, a point on the curve.
    const P256_X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
    const P256_Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

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
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "ec"},
            {"kty": "EC", "crv": "P-256", "x": X, "y": X, "kid": "off-the-curve"},
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
