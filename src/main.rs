//! The embedded default: the authorization server, the resource server and the webapp in one
//! process, on 127.0.0.1:8081, :8082 and :8080 unless configured otherwise. Ctrl-C or SIGTERM
//! stops all three; if one cannot start, the others stop too.

use std::process::ExitCode;

use authorization_server::AuthorizationServer;
use common::config::{ConfigError, Env};
use common::server::Limits;
use common::service::{bind_and_serve, BoxError, Service, ServiceConfig};
use common::tls::ServerTlsConfig;
use resource_server::ResourceServer;
use tokio_util::sync::CancellationToken;
use webapp::Webapp;

struct Configs {
    authorization_server: authorization_server::Config,
    resource_server: resource_server::Config,
    webapp: webapp::Config,
    /// One certificate for all three listeners, when set.
    tls: Option<ServerTlsConfig>,
    /// The same limits for each service, each with caps of its own.
    limits: Limits,
}

fn configs(env: &Env) -> Result<Configs, ConfigError> {
    Ok(Configs {
        authorization_server: authorization_server::Config::from_env(env)?,
        resource_server: resource_server::Config::from_env(env)?,
        webapp: webapp::Config::from_env(env)?,
        tls: ServerTlsConfig::from_env(env)?,
        limits: Limits::from_env(env)?,
    })
}

/// The `service` of the lines this process writes outside any one service's work.
const PROCESS_NAME: &str = env!("CARGO_PKG_NAME");

fn main() -> ExitCode {
    let env = Env::process();
    let release = format!("{PROCESS_NAME}@{}", env!("CARGO_PKG_VERSION"));
    // One Sentry client for the three services: each request's scope is tagged with its service.
    // Held until `main` returns: dropping it flushes the events queued for Sentry.
    let (configs, _telemetry) = match configs(&env).and_then(|configs| {
        let telemetry = common::telemetry::init(&env, PROCESS_NAME, &release)?;
        Ok((configs, telemetry))
    }) {
        Ok(started) => started,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_all(configs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

async fn run_all(configs: Configs) -> Result<(), BoxError> {
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        common::signals::shutdown().await;
        on_signal.cancel();
    });

    let (tls, limits) = (&configs.tls, configs.limits);
    let (authorization_server, resource_server, webapp) = tokio::join!(
        run_one::<AuthorizationServer>(configs.authorization_server, tls, limits, &shutdown),
        run_one::<ResourceServer>(configs.resource_server, tls, limits, &shutdown),
        run_one::<Webapp>(configs.webapp, tls, limits, &shutdown),
    );
    authorization_server.and(resource_server).and(webapp)
}

/// Runs one service; when it stops with an error, the others are told to stop as well.
async fn run_one<S: Service>(
    config: S::Config,
    tls: &Option<ServerTlsConfig>,
    limits: Limits,
    shutdown: &CancellationToken,
) -> Result<(), BoxError> {
    // `/metrics` stays on each API port here: one METRICS_LISTEN_ADDR cannot serve three services.
    let stop = shutdown.clone().cancelled_owned();
    let result = bind_and_serve::<S>(config, tls.clone(), None, limits, stop).await;
    if let Err(err) = &result {
        tracing::error!(service = S::NAME, error = %err, "service stopped; stopping the others");
        shutdown.cancel();
    }
    result
}
