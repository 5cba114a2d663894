//! What every service binary does, written once: read the configuration, answer the `healthcheck`
//! subcommand, install logging, bind, serve until Ctrl-C/SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use prometheus::Registry;
use tokio::net::TcpListener;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{ConfigError, Env};
use crate::observability::Observability;
use crate::server::{Limits, Listener, Listeners, Role};
use crate::tls::{ServerTlsConfig, TlsAcceptor};
use crate::{Clock, SystemClock};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service's settings, read once from the environment at start-up.
pub trait ServiceConfig: Sized + Send + 'static {
    fn from_env(env: &Env) -> Result<Self, ConfigError>;

    /// Where it listens: HTTPS when the TLS settings name a certificate, plain HTTP otherwise.
    fn listen_addr(&self) -> SocketAddr;

    /// A second listener that always speaks plain HTTP, if the service has one (the webapp's
    /// entry point for a user's `curl`, beside its HTTPS listener).
    fn plain_listen_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// A service as the binaries, the all-in-one launcher and the tests see it. A value of it is what
/// its handlers share, built once from its configuration; its router and its server are made of
/// it the same way for all.
pub trait Service: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    /// The crate version: with the name, the release reported to Sentry.
    const VERSION: &'static str;
    type Config: ServiceConfig;

    /// Builds the service from `config`, its metrics registered in `registry` (served on
    /// `/metrics` with the HTTP ones). The clock is injected, so that tests move time instead of
    /// sleeping. Called within a Tokio runtime.
    fn build(
        config: Self::Config,
        clock: Arc<dyn Clock>,
        registry: &Registry,
    ) -> Result<Self, BoxError>;

    /// The service's own routes, each declared with its `#[utoipa::path]`.
    fn routes() -> OpenApiRouter<Self>;

    /// The service built from `config` on `clock`: its routes with those every service has, in the
    /// middleware stack ([`crate::router`]). Call within a Tokio runtime.
    fn router(config: Self::Config, clock: Arc<dyn Clock>) -> Result<Router, BoxError> {
        let observability = Observability::new(Self::NAME)?;
        let service = Self::build(config, clock, observability.registry())?;
        let routes = Self::routes().with_state(service);
        Ok(crate::router::service_router(routes, &observability))
    }

    /// Serves [`Service::router`] on `listeners`, on the system clock, until `shutdown` completes.
    fn serve(
        listeners: Listeners,
        config: Self::Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        async move {
            let router = Self::router(config, Arc::new(SystemClock))?;
            crate::server::serve(listeners, router, shutdown).await?;
            Ok(())
        }
    }
}

/// The whole `main` of a service binary.
pub fn run_main<S: Service>() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("certs") {
        return make_certs(S::NAME);
    }
    let env = Env::process();
    let (config, tls, metrics_addr, limits) = match S::Config::from_env(&env).and_then(|config| {
        let tls = ServerTlsConfig::from_env(&env)?;
        let metrics_addr = match env.get(METRICS_LISTEN_ADDR) {
            Some(_) => Some(env.socket_addr(METRICS_LISTEN_ADDR, "")?),
            None => None,
        };
        Ok((config, tls, metrics_addr, Limits::from_env(&env)?))
    }) {
        Ok(configs) => configs,
        Err(err) => {
            eprintln!("{}: configuration error: {err}", S::NAME);
            return ExitCode::from(2);
        }
    };
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return crate::healthcheck::probe(&env, config.listen_addr(), tls.is_some());
    }
    let release = format!("{}@{}", S::NAME, S::VERSION);
    // Held until `main` returns: dropping it flushes the events queued for Sentry.
    let _telemetry = match crate::telemetry::init(&env, S::NAME, &release) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("{}: configuration error: {err}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{}: cannot start the async runtime: {err}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    let shutdown = crate::signals::shutdown();
    let serving = bind_and_serve::<S>(config, tls, metrics_addr, limits, shutdown);
    match runtime.block_on(serving) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(service = S::NAME, error = %err, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// `METRICS_LISTEN_ADDR`: where a service binary serves `/metrics`, apart from its API (the
/// embedded default keeps `/metrics` on each API port).
pub const METRICS_LISTEN_ADDR: &str = "METRICS_LISTEN_ADDR";

/// Binds the configured address and serves until `shutdown` completes: HTTPS when `tls` names a
/// certificate (reloaded on change and on SIGHUP), plain HTTP otherwise. With `metrics_addr`,
/// `/metrics` is served there (with the same TLS) and nowhere else. The connections of all its
/// listeners share one set of `limits` (caps included). Runs in a `service` span,
/// so that the lines written outside requests (start-up, background tasks) name their service too.
pub async fn bind_and_serve<S: Service>(
    config: S::Config,
    tls: Option<ServerTlsConfig>,
    metrics_addr: Option<SocketAddr>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let span = tracing::info_span!("service", service = S::NAME);
    async move {
        let acceptor = match tls {
            Some(tls) => {
                let acceptor = TlsAcceptor::load(&tls)?;
                acceptor.spawn_reloader(tls);
                Some(acceptor)
            }
            None => None,
        };
        let api = if metrics_addr.is_some() {
            Role::Api
        } else {
            Role::All
        };
        let mut listeners = vec![bind::<S>(config.listen_addr(), acceptor.clone(), api).await?];
        if let Some(addr) = config.plain_listen_addr() {
            listeners.push(bind::<S>(addr, None, api).await?);
        }
        if let Some(addr) = metrics_addr {
            listeners.push(bind::<S>(addr, acceptor, Role::Metrics).await?);
        }
        let listeners = Listeners {
            sockets: listeners,
            limits,
        };
        S::serve(listeners, config, shutdown).await
    }
    .instrument(span)
    .await
}

async fn bind<S: Service>(
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    role: Role,
) -> Result<Listener, BoxError> {
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(service = S::NAME, %addr, scheme, role = ?role, "listening");
    Ok(Listener { tcp, tls, role })
}

/// `<binary> certs [DIR]` (default `/certs`): see [`crate::dev_certs`].
fn make_certs(name: &str) -> ExitCode {
    let dir = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "/certs".to_owned());
    match crate::dev_certs::ensure(std::path::Path::new(&dir)) {
        Ok(outcome) => {
            let done = match outcome {
                crate::dev_certs::Outcome::Created => "made",
                crate::dev_certs::Outcome::Kept => "already there, kept",
            };
            println!("{name} certs: the development CA and certificates in {dir}: {done}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{name} certs: {err}");
            ExitCode::FAILURE
        }
    }
}
