//! The `healthcheck` subcommand every binary has: a container image built `FROM scratch` has no curl,
//! so the binary probes its own `/healthz`, over HTTPS when its listener speaks it, verifying the
//! certificate like every other outbound call (compiled-in roots plus `TLS_CA_FILE`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Env;
use crate::http_client::{HttpClient, Resolve};

const TIMEOUT: Duration = Duration::from_secs(2);

/// The name the certificate must carry for the probe: it connects to 127.0.0.1 but verifies
/// `localhost`, which a certificate for loopback use names.
const SERVER_NAME: &str = "localhost";

/// Asks `GET /healthz` on the service's own port over loopback; success only on a 200 answer.
pub fn probe(env: &Env, listen_addr: SocketAddr, tls: bool) -> ExitCode {
    let target = SocketAddr::from(([127, 0, 0, 1], listen_addr.port()));
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://{SERVER_NAME}:{}/healthz", target.port());
    match get_status(env, &url, target) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: {url} ({target}) answered {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("healthcheck: {url} ({target}): {err}");
            ExitCode::FAILURE
        }
    }
}

fn get_status(env: &Env, url: &str, target: SocketAddr) -> Result<u16, String> {
    let roots = crate::tls::client_ca_certificates(env).map_err(|err| err.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let client = HttpClient::with_resolve(TIMEOUT, &roots, Resolve::Pinned(target))
        .map_err(|err| err.to_string())?;
    let request = http::Request::get(url)
        .body(Default::default())
        .map_err(|err| err.to_string())?;
    // the error's sources say why a handshake failed (an unknown issuer, a wrong name)
    let answer = runtime
        .block_on(client.send(request))
        .map_err(|err| err.to_string())?;
    Ok(answer.status.as_u16())
}
