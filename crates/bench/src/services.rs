//! The three services as separate child processes (the release binaries, configured by environment
//! variables exactly as docs/configuration.md says, on free loopback ports), or as given URLs.
//! For children, peak RSS (`VmHWM`) and CPU time are read from `/proc/<pid>`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::proc;

pub const WEBAPP: &str = "webapp";
pub const AUTHORIZATION_SERVER: &str = "authorization-server";
pub const RESOURCE_SERVER: &str = "resource-server";

/// Where the three services answer; on the command line, running services to measure instead
/// (all three or none: no RSS, no CPU, one algorithm).
#[derive(Debug, Clone, clap::Args)]
pub struct Urls {
    /// The running webapp to measure (with the other two URLs).
    #[arg(long, value_name = "URL", value_parser = crate::cli::base_url, required = false,
          requires_all = ["authorization_server", "resource_server"])]
    pub webapp: String,
    /// The running authorization server to measure (with the other two URLs).
    #[arg(long, value_name = "URL", value_parser = crate::cli::base_url, required = false,
          requires_all = ["webapp", "resource_server"])]
    pub authorization_server: String,
    /// The running resource server to measure (with the other two URLs).
    #[arg(long, value_name = "URL", value_parser = crate::cli::base_url, required = false,
          requires_all = ["webapp", "authorization_server"])]
    pub resource_server: String,
}

/// How the children are started.
#[derive(Debug, Clone)]
pub struct Launch {
    pub bin_dir: PathBuf,
    /// `RUST_LOG` of the services (their default is `info`).
    pub rust_log: Option<String>,
    pub log_format: Option<String>,
    /// Where the services' log lines go; `None`: discarded (`/dev/null`).
    pub log_dir: Option<PathBuf>,
    /// TLS on every hop: the directory of `common::dev_certs` (`ca.pem`, `<service>.pem`,
    /// `<service>-key.pem`); `None`: plain HTTP.
    pub pki: Option<PathBuf>,
}

/// One started child.
pub struct Process {
    pub name: &'static str,
    child: Child,
}

impl Process {
    /// Its figures in `/proc`, while it runs.
    fn proc(&self) -> Option<proc::Process> {
        self.child.id().map(proc::Process::Child)
    }
}

/// The three children of one configuration; they are killed when this is dropped.
pub struct Stack {
    pub urls: Urls,
    pub processes: Vec<Process>,
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|err| format!("cannot find a free port: {err}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|err| format!("cannot find a free port: {err}"))
}

impl Stack {
    /// Starts the three services with `SIGNING_ALGORITHM=algorithm` and waits until each answers
    /// `/healthz`.
    pub async fn start(
        launch: &Launch,
        algorithm: &str,
        http: &reqwest::Client,
    ) -> Result<Self, String> {
        let (webapp, authorization_server, resource_server) =
            (free_port()?, free_port()?, free_port()?);
        let scheme = if launch.pki.is_some() {
            "https"
        } else {
            "http"
        };
        let as_url = format!("{scheme}://127.0.0.1:{authorization_server}");
        let rs_url = format!("{scheme}://127.0.0.1:{resource_server}");
        let urls = Urls {
            webapp: format!("{scheme}://127.0.0.1:{webapp}"),
            authorization_server: as_url.clone(),
            resource_server: rs_url.clone(),
        };
        // The same settings for all three, as compose and the tests do; each reads its own.
        let mut vars: Vec<(&str, String)> = vec![
            ("WEBAPP_LISTEN_ADDR", format!("127.0.0.1:{webapp}")),
            (
                "AUTHORIZATION_SERVER_LISTEN_ADDR",
                format!("127.0.0.1:{authorization_server}"),
            ),
            (
                "RESOURCE_SERVER_LISTEN_ADDR",
                format!("127.0.0.1:{resource_server}"),
            ),
            ("ISSUER", as_url.clone()),
            ("AUTHORIZATION_SERVER_URL", as_url),
            ("RESOURCE_SERVER_PUBLIC_URL", rs_url.clone()),
            ("RESOURCE_SERVER_URL", rs_url),
            ("SIGNING_ALGORITHM", algorithm.to_owned()),
            // All the load comes from one address (as a webapp serving many users would): the
            // per-address limit of /authorize (1,000 codes a second by default) is lifted so
            // that the bench measures the work, not the limit.
            ("AUTHORIZE_RATE_PER_SECOND", "1000000".to_owned()),
        ];
        if let Some(pki) = &launch.pki {
            vars.push(("TLS_CA_FILE", pki.join("ca.pem").display().to_string()));
        }
        if let Some(filter) = &launch.rust_log {
            vars.push(("RUST_LOG", filter.clone()));
        }
        if let Some(format) = &launch.log_format {
            vars.push(("LOG_FORMAT", format.clone()));
        }
        let mut stack = Self {
            urls,
            processes: Vec::new(),
        };
        // The authorization server first: the others need it (the resource server for the JWKS).
        for name in [AUTHORIZATION_SERVER, RESOURCE_SERVER, WEBAPP] {
            let child = spawn(launch, name, algorithm, &vars)?;
            stack.processes.push(Process { name, child });
        }
        for (name, url) in [
            (AUTHORIZATION_SERVER, &stack.urls.authorization_server),
            (RESOURCE_SERVER, &stack.urls.resource_server),
            (WEBAPP, &stack.urls.webapp),
        ] {
            wait_healthy(http, name, url, &mut stack.processes).await?;
        }
        Ok(stack)
    }

    /// Peak resident set of each child so far, in KiB.
    pub fn peak_rss_kib(&self) -> Vec<(&'static str, Option<u64>)> {
        self.processes
            .iter()
            .map(|p| (p.name, p.proc().and_then(proc::Process::peak_rss_kib)))
            .collect()
    }

    /// CPU time (user + system) of each child so far.
    pub fn cpu_times(&self) -> Vec<(&'static str, Option<Duration>)> {
        self.processes
            .iter()
            .map(|p| (p.name, p.proc().and_then(proc::Process::cpu_time)))
            .collect()
    }

    pub async fn stop(mut self) {
        for process in &mut self.processes {
            // Our own child, by its handle.
            let _ = process.child.kill().await;
        }
    }
}

fn spawn(
    launch: &Launch,
    name: &'static str,
    algorithm: &str,
    vars: &[(&str, String)],
) -> Result<Child, String> {
    let binary = launch.bin_dir.join(name);
    if !binary.is_file() {
        return Err(format!(
            "{} not found: build the services first (`cargo build --release --bins`) or pass --bin-dir",
            binary.display()
        ));
    }
    let stdout = match &launch.log_dir {
        Some(dir) => {
            let path = dir.join(format!("{name}-{algorithm}.log"));
            let file = std::fs::File::create(&path)
                .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
            Stdio::from(file)
        }
        None => Stdio::null(),
    };
    let mut command = Command::new(&binary);
    // A clean environment: nothing of the caller's (a SIGNING_KEY_FILE, a REDIS_URL, a proxy)
    // changes what is measured.
    command
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(pki) = &launch.pki {
        command
            .env("TLS_CERT_FILE", pki.join(format!("{name}.pem")))
            .env("TLS_KEY_FILE", pki.join(format!("{name}-key.pem")));
    }
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", binary.display()))
}

async fn wait_healthy(
    http: &reqwest::Client,
    name: &str,
    url: &str,
    processes: &mut [Process],
) -> Result<(), String> {
    // RSA key generation at start takes a while in the authorization server.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = http.get(format!("{url}/healthz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        for process in processes.iter_mut() {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!("{} exited at start: {status}", process.name));
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name} at {url} did not become healthy within 60 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
