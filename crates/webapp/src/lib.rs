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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use common::config::{ConfigError, Env};
use common::observability::Observability;
use common::server::Listeners;
use common::service::{BoxError, Service};

pub use config::Config;
pub use error::{Error, SetupError, Step};
pub use flow::Flow;
pub use redirect::{check_location, check_redirect_query, RedirectError};

pub const SERVICE_NAME: &str = "webapp";

/// The webapp's routes, `/metrics` and the middleware stack of [`common::observability`]; builds
/// the shared HTTP client and the service's metrics registry.
pub fn router(config: Config) -> Result<Router, SetupError> {
    let observability = Observability::new(SERVICE_NAME)?;
    let metrics = metrics::Metrics::register(observability.registry())?;
    let flow = Arc::new(Flow::new(config, metrics, Arc::new(common::SystemClock))?);
    Ok(observability.wrap(routes::router(flow)))
}

/// Serves the webapp on `listeners` until `shutdown` completes.
pub async fn serve(
    listeners: impl Into<Listeners>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let router = router(config)?;
    common::server::serve(listeners, router, shutdown).await?;
    Ok(())
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

    fn serve(
        listeners: Listeners,
        config: Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        serve(listeners, config, shutdown)
    }
}
