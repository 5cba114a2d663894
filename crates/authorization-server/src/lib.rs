//! The OAuth 2.0 authorization server: authorization code grant with PKCE (S256), one registered
//! client, RFC 9068 JWT access tokens valid for one endpoint and five seconds.

mod app;
mod authorize;
mod client;
pub mod config;
mod error;
pub mod keys;
mod params;
mod pkce;
mod routes;
pub mod store;
mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use common::config::{ConfigError, Env};
use common::service::{BoxError, Service};
use common::{Clock, SystemClock};
use tokio::net::TcpListener;

pub use crate::app::App;
pub use crate::client::RegisteredClient;
pub use crate::config::Config;
use crate::keys::SigningKey;
use crate::store::{CodeStore, MemoryCodeStore};

pub const SERVICE_NAME: &str = "authorization-server";

/// Builds the application: reads or generates the signing key, opens the code store.
pub fn app(config: Config, clock: Arc<dyn Clock>) -> Result<App, BoxError> {
    let signing_key = match &config.signing_key_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|err| format!("SIGNING_KEY_FILE {}: {err}", path.display()))?;
            let key = SigningKey::from_pem(config.signing_algorithm, &pem)
                .map_err(|err| format!("SIGNING_KEY_FILE {}: {err}", path.display()))?;
            tracing::info!(kid = key.kid(), path = %path.display(), "signing key loaded");
            key
        }
        None => {
            let key = SigningKey::generate(config.signing_algorithm)?;
            tracing::info!(
                kid = key.kid(),
                algorithm = ?key.algorithm(),
                "signing key generated at start (set SIGNING_KEY_FILE to keep one across restarts)"
            );
            key
        }
    };
    let store: Arc<dyn CodeStore> = Arc::new(MemoryCodeStore::new());
    Ok(App {
        config,
        signing_key,
        store,
        clock,
    })
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(routes::metadata),
        )
        .route("/.well-known/jwks.json", get(routes::jwks))
        .route("/authorize", get(routes::authorize))
        .route("/token", post(routes::token))
        .route("/healthz", get(routes::healthz))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            SERVICE_NAME,
            common::request_id::track,
        ))
}

pub struct AuthorizationServer;

impl Service for AuthorizationServer {
    const NAME: &'static str = SERVICE_NAME;
    type Config = Config;

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(env)
    }

    fn listen_addr(config: &Config) -> SocketAddr {
        config.listen_addr
    }

    async fn serve(
        listener: TcpListener,
        config: Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), BoxError> {
        let app = Arc::new(app(config, Arc::new(SystemClock))?);
        common::server::serve(listener, router(app), shutdown).await?;
        Ok(())
    }
}
