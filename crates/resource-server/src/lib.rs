//! The resource server: serves `GET /current_time` and `GET /epoch_time` to requests carrying a
//! valid RFC 9068 access token for that endpoint and that user (RFC 6750 bearer usage).
//!
//! Modules: [`config`] (settings), [`request`] (what a request must carry), [`jwks`] (the key
//! cache), [`validation`] (token checks, pure), [`error`] (failures and their HTTP answers),
//! [`routes`] (handlers).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use common::config::{ConfigError, Env};
use common::observability::Observability;
use common::server::Listeners;
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
pub use routes::router;

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
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, BoxError> {
        let client = common::http_client::build(config.upstream_timeout, &config.ca_certificates)?;
        let observability = Observability::new(SERVICE_NAME)?;
        let metrics = metrics::Metrics::register(observability.registry())?;
        Ok(Self {
            validator: Arc::new(validation::TokenValidator::new(config)),
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

/// The router with an injected clock (tests use `common::clock::ManualClock`).
pub fn router_with_clock(config: &Config, clock: Arc<dyn Clock>) -> Result<Router, BoxError> {
    Ok(router(AppState::new(config, clock)?))
}

/// Serves on `listeners` until `shutdown` completes, with the system clock.
pub async fn serve(
    listeners: impl Into<Listeners>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    serve_with_clock(listeners, config, Arc::new(SystemClock), shutdown).await
}

/// [`serve`] with an injected clock.
pub async fn serve_with_clock(
    listeners: impl Into<Listeners>,
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let router = router_with_clock(&config, clock)?;
    common::server::serve(listeners, router, shutdown).await?;
    Ok(())
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

    fn serve(
        listeners: Listeners,
        config: Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        serve(listeners, config, shutdown)
    }
}
