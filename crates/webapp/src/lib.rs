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

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::Router;
use common::config::{ConfigError, Env};
use common::observability::Observability;
use common::service::{BoxError, Service};
use common::{Clock, SystemClock};

pub use config::Config;
pub use error::{Error, SetupError, Step};
pub use flow::Flow;
pub use redirect::{check_location, check_redirect_query, RedirectError};

pub const SERVICE_NAME: &str = "webapp";

/// What the handlers share: the flow, built once, and the service's metrics.
#[derive(Clone)]
pub struct AppState {
    flow: Arc<Flow>,
    observability: Observability,
}

impl FromRef<AppState> for Arc<Flow> {
    fn from_ref(state: &AppState) -> Self {
        state.flow.clone()
    }
}

impl AppState {
    /// Builds the shared HTTP client, the login cookies' key and the service's metrics registry;
    /// `clock` dates and expires a browser's login.
    pub fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, BoxError> {
        let observability = Observability::new(SERVICE_NAME)?;
        let metrics = metrics::Metrics::register(observability.registry())?;
        let flow = Arc::new(Flow::new(config, metrics, clock)?);
        Ok(Self {
            flow,
            observability,
        })
    }
}

/// The service's routes with those every service has, in the middleware stack
/// ([`common::router`]).
pub fn router(state: AppState) -> Router {
    let observability = state.observability.clone();
    common::router::service_router(routes::openapi_router().with_state(state), &observability)
}

/// The webapp as the binaries and the all-in-one launcher see it.
pub struct Webapp;

impl Service for Webapp {
    const NAME: &'static str = SERVICE_NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Config = Config;

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(env)
    }

    fn listen_addr(config: &Config) -> SocketAddr {
        config.listen_addr
    }

    fn plain_listen_addr(config: &Config) -> Option<SocketAddr> {
        config.plain_listen_addr
    }

    fn build_router(config: Config) -> Result<Router, BoxError> {
        Ok(router(AppState::build(config, Arc::new(SystemClock))?))
    }
}
