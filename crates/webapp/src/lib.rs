//! The webapp: the OAuth client users call. Every call to `/current_time` or `/epoch_time` runs a
//! fresh authorization code flow against the authorization server (PKCE S256, `state`, RFC 8707
//! `resource`, RFC 9207 `iss` check), redeems the code with `client_secret_basic`, and calls the
//! resource server with the access token. See [`flow`].

mod browser;
pub mod config;
pub mod error;
pub mod flow;
pub mod login;
mod metrics;
mod page;
pub mod redirect;
mod routes;
mod upstream;

use std::sync::Arc;

use axum::extract::FromRef;
use common::service::{BoxError, Service};
use common::Clock;
use prometheus::Registry;
use utoipa_axum::router::OpenApiRouter;

pub use config::Config;
pub use error::{Error, SetupError, Step};
pub use flow::Flow;
pub use redirect::{check_location, check_redirect_query, RedirectError};

/// The webapp: what its handlers share, the flow, built once.
#[derive(Clone)]
pub struct Webapp(Arc<Flow>);

impl FromRef<Webapp> for Arc<Flow> {
    fn from_ref(webapp: &Webapp) -> Self {
        webapp.0.clone()
    }
}

impl Service for Webapp {
    const NAME: &'static str = "webapp";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Config = Config;

    /// Builds the shared HTTP client and the login cookies' key; `clock` dates and expires a
    /// browser's login.
    fn build(config: Config, clock: Arc<dyn Clock>, registry: &Registry) -> Result<Self, BoxError> {
        let metrics = metrics::Metrics::register(registry)?;
        Ok(Self(Arc::new(Flow::new(config, metrics, clock)?)))
    }

    fn routes() -> OpenApiRouter<Self> {
        routes::openapi_router()
    }
}
