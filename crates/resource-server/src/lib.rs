//! The resource server: serves `GET /current_time` and `GET /epoch_time` to requests carrying a
//! valid RFC 9068 access token for that endpoint and that user (RFC 6750 bearer usage).
//!
//! Modules: [`config`] (settings), [`request`] (what a request must carry), [`jwks`] (the key
//! cache), [`validation`] (token checks, pure), [`error`] (failures and their HTTP answers),
//! [`routes`] (the routes and their handlers).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use common::config::{ConfigError, Env};
use common::http_client::HttpClient;
use common::observability::Observability;
use common::service::{BoxError, Service};
use common::{Clock, SystemClock};

pub mod config;
pub mod error;
pub mod jwks;
mod metrics;
pub mod request;
pub mod routes;
pub mod validation;

pub use config::Config;
pub use error::Error;

pub const SERVICE_NAME: &str = "resource-server";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    validator: Arc<validation::TokenValidator>,
    keys: Arc<jwks::KeyCache>,
    clock: Arc<dyn Clock>,
    observability: Observability,
    metrics: metrics::Metrics,
}

impl AppState {
    /// Builds the state; the JWKS is not fetched here but when a token first needs a key.
    pub fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, BoxError> {
        let client = HttpClient::new(config.upstream_timeout, &config.ca_certificates)?
            .with_max_answer(jwks::MAX_JWKS_BYTES);
        let observability = Observability::new(SERVICE_NAME)?;
        let metrics = metrics::Metrics::register(observability.registry())?;
        Ok(Self {
            validator: Arc::new(validation::TokenValidator::new(&config)),
            keys: Arc::new(jwks::KeyCache::new(
                config.jwks_url(),
                client,
                config.deployment.signing_algorithm,
                config.jwks_refetch_interval,
                clock.clone(),
                metrics.clone(),
            )),
            clock,
            observability,
            metrics,
        })
    }
}

/// The service's routes with those every service has, in the middleware stack
/// ([`common::router`]).
pub fn router(state: AppState) -> Router {
    let observability = state.observability.clone();
    common::router::service_router(routes::openapi_router().with_state(state), &observability)
}

pub struct ResourceServer;

impl Service for ResourceServer {
    const NAME: &'static str = SERVICE_NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Config = Config;

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(env)
    }

    fn listen_addr(config: &Config) -> SocketAddr {
        config.listen_addr
    }

    fn build_router(config: Config) -> Result<Router, BoxError> {
        Ok(router(AppState::build(config, Arc::new(SystemClock))?))
    }
}
