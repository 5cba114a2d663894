//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;
use test_client::ClientIdentity;

use crate::services::Urls;

/// Performance benchmark: the full user call, each service alone and the server stack's own
/// ceiling, measured in one run.
///
/// Starts the three services as child processes (the release binaries, built first unless
/// --no-build or --bin-dir), once per signing algorithm, or measures already running services
/// (--webapp, --authorization-server and --resource-server together, e.g. the compose stack).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bench",
    after_help = "Exits non-zero when any measured operation failed (the figures are still printed)."
)]
pub struct Args {
    /// Measured time per point, in seconds.
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = seconds)]
    pub duration: Duration,
    /// Warm-up per point, not measured, in seconds.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    pub warmup: Duration,
    /// Full-call and ceiling concurrencies.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1,16,64",
          value_parser = positive)]
    pub concurrency: Vec<usize>,
    /// Concurrency of the authorization server / resource server alone points.
    #[arg(long, value_name = "N", default_value = "64", value_parser = positive)]
    pub component_concurrency: usize,
    /// At the highest concurrency, measure ceiling, full call, ceiling, full call, ...: N full
    /// calls between N + 1 ceilings, and report the median ratio of the N rounds.
    #[arg(long, value_name = "N", default_value = "3", value_parser = positive)]
    pub rounds: usize,
    /// At most N operations per point (default: no limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_ops: Option<u64>,
    /// Which points.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "ceiling,full,as,rs"
    )]
    pub points: Vec<Kind>,
    /// The SIGNING_ALGORITHMs compared; the first one also gets the ceiling and every full-call
    /// concurrency.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "EdDSA,ES256,RS256"
    )]
    pub algorithms: Vec<Algorithm>,
    /// Where the figures are written.
    #[arg(long, value_name = "PATH", default_value = "target/bench.json")]
    pub json: PathBuf,
    /// Where the service binaries are (default: target/release); implies --no-build.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Do not run `cargo build --release` for the service binaries.
    #[arg(long)]
    pub no_build: bool,
    /// TLS on every hop: the services serve HTTPS with certificates of a development CA made
    /// for the run, and trust it (TLS_CA_FILE).
    #[arg(long, conflicts_with = "webapp")]
    pub tls: bool,
    /// RUST_LOG of the services (default: theirs, `info`).
    #[arg(long, value_name = "FILTER")]
    pub rust_log: Option<String>,
    /// LOG_FORMAT of the services (default: theirs, `text`).
    #[arg(long)]
    pub log_format: Option<LogFormat>,
    /// Keep the services' log lines there (default: discarded).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub targets: Option<Urls>,
    /// The registered client's id.
    #[arg(long, value_name = "ID", default_value = test_client::CLIENT_ID)]
    pub client_id: String,
    /// The registered client's secret.
    #[arg(long, value_name = "S", default_value = test_client::CLIENT_SECRET)]
    pub client_secret: String,
    /// The registered client's redirect URI.
    #[arg(long, value_name = "URI", default_value = test_client::REDIRECT_URI)]
    pub redirect_uri: String,
    /// The user of every call.
    #[arg(long, value_name = "NAME", default_value = "alice")]
    pub user: String,
}

impl Args {
    /// Whether the service binaries are built first.
    pub fn build(&self) -> bool {
        !self.no_build && self.bin_dir.is_none()
    }

    pub fn client(&self) -> ClientIdentity {
        ClientIdentity {
            id: self.client_id.clone(),
            secret: self.client_secret.clone(),
            redirect_uri: self.redirect_uri.clone(),
        }
    }

    pub fn wants(&self, kind: Kind) -> bool {
        self.points.contains(&kind)
    }

    pub fn highest_concurrency(&self) -> usize {
        self.concurrency.iter().copied().max().unwrap_or(1)
    }
}

/// What a point measures: `--points` names them `ceiling,full,as,rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `GET /healthz`: the server stack's ceiling.
    Ceiling,
    /// One full user call through the webapp.
    #[value(name = "full")]
    FullCall,
    /// The authorization server alone: authorize + token pairs.
    #[value(name = "as")]
    AuthorizationServer,
    /// The resource server alone: validated calls.
    #[value(name = "rs")]
    ResourceServer,
}

/// The services' SIGNING_ALGORITHM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    #[value(name = "EdDSA")]
    EdDsa,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "RS256")]
    Rs256,
}

/// The services' LOG_FORMAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The name a value has on the command line, which is the one the services read.
pub fn name(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|value| value.get_name().to_owned())
        .unwrap_or_default()
}

fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("expected seconds, got {value:?}"))
}

fn positive(value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected a positive number, got {value:?}"))
}

/// A service's base URL, without a trailing `/`.
pub fn base_url(value: &str) -> Result<String, String> {
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::CommandFactory;

    use super::*;

    pub fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.duration, Duration::from_secs(3));
        assert_eq!(args.concurrency, vec![1, 16, 64]);
        assert_eq!(args.rounds, 3);
        assert_eq!(args.points.len(), 4);
        assert_eq!(
            args.algorithms.iter().map(name).collect::<Vec<_>>(),
            ["EdDSA", "ES256", "RS256"]
        );
        assert_eq!(args.client(), ClientIdentity::default());
        assert!(args.targets.is_none() && args.build());
        let args = parse(&["--duration", "0.5", "--concurrency", "2,4", "--no-build"]).unwrap();
        assert_eq!(args.duration, Duration::from_millis(500));
        assert_eq!(args.concurrency, vec![2, 4]);
        assert!(!args.build());
        assert!(!parse(&["--bin-dir", "x"]).unwrap().build());
        let args = parse(&["--points", "ceiling,full", "--log-format", "json"]).unwrap();
        assert_eq!(args.points, [Kind::Ceiling, Kind::FullCall]);
        assert_eq!(args.log_format.as_ref().map(name).as_deref(), Some("json"));
        let urls = [
            "--webapp",
            "http://w/",
            "--authorization-server",
            "http://a",
        ];
        let args = parse(&[&urls[..], &["--resource-server", "http://r"]].concat()).unwrap();
        assert_eq!(args.targets.unwrap().webapp, "http://w");
        assert_eq!(
            parse(&["--help"]).unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in [
            &["--concurrency", "0"][..],
            &["--rounds", "0"],
            &["--max-ops", "0"],
            &["--algorithms", "HS256"],
            &["--points", "everything"],
            &["--webapp", "http://x"],
            &["--duration"],
            &["--duration", "-1"],
            &["--frobnicate", "1"],
            &["--log-format", "xml"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["--tls"]).unwrap().tls);
        let with_targets = [
            "--webapp",
            "http://w",
            "--authorization-server",
            "http://a",
            "--resource-server",
            "http://r",
            "--tls",
        ];
        assert!(parse(&with_targets).is_err(), "--tls with given URLs");
    }
}
