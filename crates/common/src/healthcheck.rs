//! The `healthcheck` subcommand every binary has: a container image built `FROM scratch` has no curl,
//! so the binary probes its own `/healthz`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Asks `GET /healthz` on the service's own port over loopback; success only on a 200 answer.
pub fn probe(listen_addr: SocketAddr) -> ExitCode {
    let target = SocketAddr::from(([127, 0, 0, 1], listen_addr.port()));
    match get_healthz(target) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("healthcheck: {target} answered /healthz with a non-200 status");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("healthcheck: {target}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn get_healthz(target: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut status_line = [0u8; 12];
    stream.read_exact(&mut status_line)?;
    Ok(status_line.starts_with(b"HTTP/1.") && &status_line[8..12] == b" 200")
}
