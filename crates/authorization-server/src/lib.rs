//! The OAuth 2.0 authorization server: authorization code grant with PKCE (S256), one registered
//! client, RFC 9068 JWT access tokens valid for one endpoint and five seconds.

mod app;
mod authorize;
mod authorize_rate;
mod client;
pub mod config;
mod error;
mod key_reload;
pub mod keys;
mod metrics;
mod params;
mod pkce;
mod redis_store;
mod routes;
pub mod store;
mod throttle;
mod token;

/// The request parsers and rules, for the fuzz targets in `fuzz/` and `tests/fuzz_corpus` (not an
/// API; feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::authorize::{authorize, Granted, Refusal};
    pub use crate::error::{AuthMethod, ErrorCode, OAuthError};
    pub use crate::params::{Params, Repeated};
    pub use crate::pkce::{CodeChallenge, CodeVerifier};
    pub use crate::token::{authenticate, parse_token_request, presented_credentials};
    pub use crate::token::{PresentedCredentials, TokenRequest};
}

use std::sync::Arc;

use axum::extract::FromRef;
use common::service::{BoxError, Service};
use common::Clock;
use prometheus::Registry;
use secrecy::ExposeSecret;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use crate::authorize_rate::AuthorizeRateLimit;
pub use crate::client::RegisteredClient;
pub use crate::config::Config;
use crate::keys::{KeyRing, KeySet, SigningKey};
use crate::redis_store::RedisCodeStore;
use crate::store::{CodeStore, MemoryCodeStore};
use crate::throttle::ClientAuthThrottle;

const SERVICE_NAME: &str = "authorization-server";

/// The authorization server: what its handlers share, the application, built once.
#[derive(Clone)]
pub struct AuthorizationServer(Arc<App>);

impl FromRef<AuthorizationServer> for Arc<App> {
    fn from_ref(server: &AuthorizationServer) -> Self {
        server.0.clone()
    }
}

impl Service for AuthorizationServer {
    const NAME: &'static str = SERVICE_NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Config = Config;

    /// Builds the application: loads or generates the signing keys (and starts watching a key
    /// directory), sets up the code store.
    fn build(config: Config, clock: Arc<dyn Clock>, registry: &Registry) -> Result<Self, BoxError> {
        let metrics = metrics::Metrics::register(registry)?;
        let keys = Arc::new(KeyRing::new(key_set(&config)?));
        if let Some(dir) = &config.signing_keys_dir {
            key_reload::spawn(
                &keys,
                dir.clone(),
                config.deployment.signing_algorithm,
                config.signing_keys_reload_interval,
                metrics.clone(),
            );
        }
        let store: Arc<dyn CodeStore> = match &config.redis_url {
            Some(url) => {
                tracing::info!(
                    service = SERVICE_NAME,
                    "authorization codes are kept in Redis"
                );
                let ca = match &config.redis_ca_file {
                    Some(path) => Some(std::fs::read(path).map_err(|err| {
                        format!("REDIS_CA_FILE: cannot read {}: {err}", path.display())
                    })?),
                    None => None,
                };
                let store =
                    RedisCodeStore::new(url.expose_secret(), ca, config.max_live_codes.get())
                        .map_err(|err| format!("REDIS_URL: {err}"))?;
                Arc::new(store)
            }
            None => Arc::new(MemoryCodeStore::new(config.max_live_codes.get())),
        };
        let throttle = ClientAuthThrottle::new(config.client.id.as_str());
        let authorize_rate = AuthorizeRateLimit::new(config.authorize_rate, clock.clone());
        Ok(Self(Arc::new(App {
            config,
            keys,
            store,
            clock,
            throttle,
            authorize_rate,
            metrics,
        })))
    }

    fn routes() -> OpenApiRouter<Self> {
        routes::openapi_router()
    }
}

fn key_set(config: &Config) -> Result<KeySet, BoxError> {
    let algorithm = config.deployment.signing_algorithm;
    if let Some(dir) = &config.signing_keys_dir {
        let set = KeySet::load_dir(dir, algorithm)
            .map_err(|err| format!("SIGNING_KEYS_DIR {}: {err}", dir.display()))?;
        tracing::info!(
            service = SERVICE_NAME,
            active = set.active().kid(),
            published = ?set.kids(),
            "signing keys loaded from a directory (reloaded on change and on SIGHUP)"
        );
        return Ok(set);
    }
    let key = match &config.signing_key_file {
        Some(path) => {
            common::secret_file::check_private(path)
                .map_err(|err| format!("SIGNING_KEY_FILE {}: {err}", path.display()))?;
            let pem = std::fs::read_to_string(path)
                .map_err(|err| format!("SIGNING_KEY_FILE {}: {err}", path.display()))?;
            let key = SigningKey::from_pem(algorithm, &pem)
                .map_err(|err| format!("SIGNING_KEY_FILE {}: {err}", path.display()))?;
            tracing::info!(service = SERVICE_NAME, kid = key.kid(), path = %path.display(), "signing key loaded");
            key
        }
        None => {
            let key = SigningKey::generate(algorithm)?;
            tracing::info!(
                service = SERVICE_NAME,
                kid = key.kid(),
                algorithm = ?key.algorithm(),
                "signing key generated at start (set SIGNING_KEY_FILE to keep one across restarts)"
            );
            key
        }
    };
    Ok(KeySet::single(key))
}
