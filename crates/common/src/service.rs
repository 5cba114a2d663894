//! What every service binary does, written once: read the configuration, answer the `healthcheck`
//! subcommand, install logging, bind, serve until Ctrl-C/SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::{ConfigError, Env};
use crate::server::Listener;
use crate::tls::{ServerTlsConfig, TlsAcceptor};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service as the binaries and the all-in-one launcher see it.
pub trait Service {
    const NAME: &'static str;
    /// The crate version: with the name, the release reported to Sentry.
    const VERSION: &'static str;
    type Config: Send + 'static;

    fn config(env: &Env) -> Result<Self::Config, ConfigError>;

    fn listen_addr(config: &Self::Config) -> SocketAddr;

    fn serve(
        listener: Listener,
        config: Self::Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The whole `main` of a service binary.
pub fn run_main<S: Service>() -> ExitCode {
    let env = Env::process();
    let (config, tls) = match S::config(&env).and_then(|config| {
        let tls = ServerTlsConfig::from_env(&env)?;
        Ok((config, tls))
    }) {
        Ok(configs) => configs,
        Err(err) => {
            eprintln!("{}: configuration error: {err}", S::NAME);
            return ExitCode::from(2);
        }
    };
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return crate::healthcheck::probe(&env, S::listen_addr(&config), tls.is_some());
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
    match runtime.block_on(bind_and_serve::<S>(config, tls, crate::signals::shutdown())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(service = S::NAME, error = %err, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// Binds the configured address and serves until `shutdown` completes: HTTPS when `tls` names a
/// certificate (reloaded on change and on SIGHUP), plain HTTP otherwise. Runs in a `service` span,
/// so that the lines written outside requests (start-up, background tasks) name their service too.
pub async fn bind_and_serve<S: Service>(
    config: S::Config,
    tls: Option<ServerTlsConfig>,
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
        let addr = S::listen_addr(&config);
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        tracing::info!(service = S::NAME, %addr, scheme, "listening");
        let listener = Listener { tcp, tls: acceptor };
        S::serve(listener, config, shutdown).await
    }
    .instrument(span)
    .await
}
