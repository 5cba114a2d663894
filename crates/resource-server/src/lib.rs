//! The resource server: serves `GET /current_time` and `GET /epoch_time` to requests carrying a
//! valid RFC 9068 access token for that endpoint and that user (RFC 6750 bearer usage).
//!
//! Modules: [`config`] (settings), [`request`] (what a request must carry), [`jwks`] (the key
//! cache), [`validation`] (token checks, pure), [`error`] (failures and their HTTP answers),
//! [`routes`] (the routes and their handlers).

use std::sync::Arc;

use common::service::{BoxError, Service};
use common::Clock;
use prometheus::Registry;
use utoipa_axum::router::OpenApiRouter;

pub mod config;
pub mod error;
pub mod jwks;
mod metrics;
pub mod request;
pub mod routes;
pub mod validation;
pub mod verifying_key;

pub use config::Config;
pub use error::Error;

/// The resource server: what its handlers share.
#[derive(Clone)]
pub struct ResourceServer {
    validator: Arc<validation::TokenValidator>,
    keys: Arc<jwks::KeyCache>,
    clock: Arc<dyn Clock>,
    metrics: metrics::Metrics,
}

impl Service for ResourceServer {
    const NAME: &'static str = "resource-server";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Config = Config;

    /// Builds the state; the JWKS is not fetched here but when a token first needs a key.
    fn build(config: Config, clock: Arc<dyn Clock>, registry: &Registry) -> Result<Self, BoxError> {
        let client = config
            .upstream
            .http_client()?
            .with_max_answer(jwks::MAX_JWKS_BYTES);
        let metrics = metrics::Metrics::register(registry)?;
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
            metrics,
        })
    }

    fn routes() -> OpenApiRouter<Self> {
        routes::openapi_router()
    }
}
