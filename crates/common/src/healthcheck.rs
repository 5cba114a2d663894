//! The `healthcheck` subcommand every binary has: a container image built `FROM scratch` has no curl,
//! so the binary probes its own `/healthz`, over HTTPS when its listener speaks it, verifying the
//! certificate like every other outbound call (compiled-in roots plus `TLS_CA_FILE`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Env;

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
    runtime.block_on(async {
        let client = crate::http_client::builder(TIMEOUT, &roots)
            .resolve(SERVER_NAME, target)
            .build()
            .map_err(|err| err.to_string())?;
        // the sources say why a handshake failed (an unknown issuer, a wrong name)
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|err| crate::http_client::failure(&err))?;
        Ok(response.status().as_u16())
    })
}
