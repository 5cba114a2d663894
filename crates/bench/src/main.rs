//! The performance benchmark (issue 6): the full user call through the webapp, the authorization
//! server alone, the resource server alone and the server stack's own ceiling (a trivial route
//! behind the same hyper + axum + middleware), measured by one load generator in one run, so that
//! the results hold as ratios on a noisy shared machine. Peak RSS and CPU time per operation of
//! each service come from `/proc`. Prints a table and writes the same figures as JSON.
//!
//! `cargo run --release -p bench -- --help`

mod flows;
mod load;
mod services;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::flows::{FreshToken, OAuthClient};
use crate::load::{Load, Op, Stats};
use crate::services::{Launch, Stack, Urls};

const USAGE: &str = "\
Usage: cargo run --release -p bench -- [options]

Starts the three services as child processes (the release binaries, built first unless
--no-build or --bin-dir), once per signing algorithm, or measures already running services
(--webapp, --authorization-server and --resource-server together, e.g. the compose stack).

Exits non-zero when any measured operation failed (the figures are still printed).

Options:
  --duration SECS              measured time per point (default 3)
  --warmup SECS                warm-up per point, not measured (default 1)
  --concurrency LIST           full-call and ceiling concurrencies (default 1,16,64)
  --component-concurrency N    concurrency of the authorization server / resource server alone
                               points (default 64)
  --rounds N                   at the highest concurrency, measure ceiling, full call, ceiling,
                               full call, ... N full calls between N + 1 ceilings, and report the
                               median ratio of the N rounds (default 3)
  --max-ops N                  at most N operations per point (default: no limit)
  --points LIST                which points: ceiling,full,as,rs (default: all four)
  --algorithms LIST            SIGNING_ALGORITHMs compared (default EdDSA,ES256,RS256); the first
                               one also gets the ceiling and every full-call concurrency
  --json PATH                  where the figures are written (default target/bench.json)
  --bin-dir DIR                where the service binaries are (default: target/release)
  --no-build                   do not run `cargo build --release` for the service binaries
  --tls                        TLS on every hop: the services serve HTTPS with certificates of a
                               development CA made for the run, and trust it (TLS_CA_FILE)
  --rust-log FILTER            RUST_LOG of the services (default: theirs, `info`)
  --log-format text|json       LOG_FORMAT of the services (default: theirs, `text`)
  --log-dir DIR                keep the services' log lines there (default: discarded)
  --webapp URL --authorization-server URL --resource-server URL
                               measure running services instead (no RSS, no CPU, one algorithm)
  --client-id ID --client-secret S --redirect-uri URI --user NAME
                               the registered client and user (defaults: 1234, qwerty,
                               http://localhost:8080/callback, alice)
";

/// The targets of issue 6.
const TARGET_RATIO: f64 = 0.5;
const TARGET_P50_MS: f64 = 1.0;
const TARGET_RSS_KIB: u64 = 30 * 1024;

#[derive(Debug, Clone)]
struct Args {
    duration: Duration,
    warmup: Duration,
    concurrency: Vec<usize>,
    component_concurrency: usize,
    rounds: usize,
    max_ops: Option<u64>,
    points: Vec<String>,
    algorithms: Vec<String>,
    json: PathBuf,
    bin_dir: Option<PathBuf>,
    build: bool,
    rust_log: Option<String>,
    log_format: Option<String>,
    log_dir: Option<PathBuf>,
    targets: Option<Urls>,
    client: OAuthClient,
    tls: bool,
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        concurrency: vec![1, 16, 64],
        component_concurrency: 64,
        rounds: 3,
        max_ops: None,
        points: ["ceiling", "full", "as", "rs"].map(str::to_owned).to_vec(),
        algorithms: vec!["EdDSA".into(), "ES256".into(), "RS256".into()],
        json: PathBuf::from("target/bench.json"),
        bin_dir: None,
        build: true,
        rust_log: None,
        log_format: None,
        log_dir: None,
        targets: None,
        client: OAuthClient {
            id: "1234".into(),
            secret: "qwerty".into(),
            redirect_uri: "http://localhost:8080/callback".into(),
            user: "alice".into(),
        },
        tls: false,
    };
    let (mut webapp, mut authorization_server, mut resource_server) = (None, None, None);
    while let Some(flag) = raw.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        if flag == "--no-build" {
            args.build = false;
            continue;
        }
        if flag == "--tls" {
            args.tls = true;
            continue;
        }
        let value = raw.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let seconds = |v: &str| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{flag}: expected seconds, got {v:?}"))
        };
        let number = |v: &str| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: expected a positive number, got {v:?}"))
        };
        match flag.as_str() {
            "--duration" => args.duration = seconds(&value)?,
            "--warmup" => args.warmup = seconds(&value)?,
            "--concurrency" => {
                args.concurrency = value
                    .split(',')
                    .map(|n| number(n.trim()))
                    .collect::<Result<_, _>>()?;
            }
            "--component-concurrency" => args.component_concurrency = number(&value)?,
            "--rounds" => args.rounds = number(&value)?,
            "--max-ops" => args.max_ops = Some(number(&value)? as u64),
            "--algorithms" => {
                args.algorithms = value.split(',').map(|a| a.trim().to_owned()).collect();
                if let Some(bad) = args
                    .algorithms
                    .iter()
                    .find(|a| !["EdDSA", "ES256", "RS256"].contains(&a.as_str()))
                {
                    return Err(format!(
                        "--algorithms: {bad:?} is not EdDSA, ES256 or RS256"
                    ));
                }
            }
            "--points" => {
                args.points = value.split(',').map(|p| p.trim().to_owned()).collect();
                if let Some(bad) = args
                    .points
                    .iter()
                    .find(|p| !["ceiling", "full", "as", "rs"].contains(&p.as_str()))
                {
                    return Err(format!("--points: {bad:?} is not ceiling, full, as or rs"));
                }
            }
            "--json" => args.json = PathBuf::from(value),
            "--bin-dir" => {
                args.bin_dir = Some(PathBuf::from(value));
                args.build = false;
            }
            "--rust-log" => args.rust_log = Some(value),
            "--log-format" => args.log_format = Some(value),
            "--log-dir" => args.log_dir = Some(PathBuf::from(value)),
            "--webapp" => webapp = Some(value.trim_end_matches('/').to_owned()),
            "--authorization-server" => {
                authorization_server = Some(value.trim_end_matches('/').to_owned());
            }
            "--resource-server" => resource_server = Some(value.trim_end_matches('/').to_owned()),
            "--client-id" => args.client.id = value,
            "--client-secret" => args.client.secret = value,
            "--redirect-uri" => args.client.redirect_uri = value,
            "--user" => args.client.user = value,
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    args.targets = match (webapp, authorization_server, resource_server) {
        (None, None, None) => None,
        (Some(webapp), Some(authorization_server), Some(resource_server)) => Some(Urls {
            webapp,
            authorization_server,
            resource_server,
        }),
        _ => {
            return Err(
                "--webapp, --authorization-server and --resource-server go together".to_owned(),
            )
        }
    };
    if args.tls && args.targets.is_some() {
        return Err("--tls starts its own services: not with --webapp and the others".to_owned());
    }
    if args.concurrency.is_empty() || args.algorithms.is_empty() || args.points.is_empty() {
        return Err("--concurrency, --algorithms and --points need at least one value".to_owned());
    }
    Ok(Some(args))
}

/// One measured point.
#[derive(Debug, Clone, Serialize)]
struct Point {
    /// `ceiling`, `full_call`, `authorization_server` (authorize + token pairs) or
    /// `resource_server` (validated calls).
    kind: &'static str,
    /// The services' SIGNING_ALGORITHM (`configured` when measuring given URLs).
    algorithm: String,
    #[serde(flatten)]
    stats: Stats,
    /// CPU time (user + system) per successful operation, in microseconds, of each service process
    /// and of the load generator (`bench`), over the measured window.
    cpu_us_per_op: BTreeMap<&'static str, f64>,
    /// Operations that failed during the warm-up: not measured, but a failure all the same.
    warmup_errors: u64,
    warmup_error_samples: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    memory_mib: u64,
    load_average_before: String,
    load_average_after: String,
}

/// One full-call point at the highest concurrency against the ceilings measured right before and
/// right after it.
#[derive(Debug, Clone, Serialize)]
struct Round {
    full_call_per_second: f64,
    /// The higher of the two neighbouring ceilings.
    ceiling_per_second: f64,
    /// full calls/s ÷ (ceiling/s ÷ 4). Target ≥ 0.5.
    ratio: f64,
    /// The same against the lower neighbouring ceiling: how far the machine's noise moves it.
    ratio_against_lower_ceiling: f64,
    /// CPU of a full call ÷ CPU of four ceiling requests (every process, the load generator
    /// included; the mean of the two ceilings): below 2 the ratio can reach 0.5 on saturated
    /// CPUs. `None` when measuring given URLs (no CPU figures).
    cpu_ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Summary {
    /// Each round at the highest concurrency, in the order measured.
    rounds: Vec<Round>,
    /// The round with the median ratio (the lower middle one for an even count): its ceiling,
    /// full calls and ratios are the headline figures.
    ceiling_per_second: Option<f64>,
    full_call_per_second: Option<f64>,
    ratio_to_quarter_ceiling: Option<f64>,
    ratio_against_lower_ceiling: Option<f64>,
    /// The median of the rounds' CPU ratios.
    cpu_ratio: Option<f64>,
    ratio_concurrency: usize,
    /// p50 of the full call at concurrency 1, in ms. Target < 1.
    full_call_p50_ms_at_1: Option<f64>,
    /// Peak RSS (VmHWM) of each service process, in KiB, per algorithm. Target ≤ 30 MiB.
    peak_rss_kib: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Peak RSS of the load generator itself, in KiB.
    bench_peak_rss_kib: Option<u64>,
    ratio_target_met: Option<bool>,
    p50_target_met: Option<bool>,
    rss_target_met: Option<bool>,
    errors: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    command: String,
    mode: &'static str,
    duration_s: f64,
    warmup_s: f64,
    machine: Machine,
    points: Vec<Point>,
    summary: Summary,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("bench: {err}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("bench: warning: an unoptimised build; run with `cargo run --release -p bench`");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The load generator's client; with `ca`, it trusts that PEM CA as well.
fn http_client(ca: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|err| format!("{}: {err}", ca.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .map_err(|err| format!("{}: {err}", ca.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {err}"))
}

fn default_bin_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find this binary: {err}"))?;
    // target/<profile>/bench → target/release
    exe.parent()
        .and_then(|profile| profile.parent())
        .map(|target| target.join("release"))
        .ok_or_else(|| format!("cannot find the target directory from {}", exe.display()))
}

fn build_services() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // `--workspace`: the feature set of every other build of the workspace, so nothing rebuilds.
    eprintln!("bench: building the service binaries (cargo build --release --workspace --bins)…");
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--workspace", "--bins"])
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build failed: {status}"))
    }
}

/// Measures `op` at `concurrency`: a warm-up run, then the measured run, with the CPU time each
/// process spent in between.
async fn measure(
    args: &Args,
    stack: Option<&Stack>,
    kind: &'static str,
    algorithm: &str,
    concurrency: usize,
    op: Op,
) -> Point {
    let load = Load {
        concurrency,
        duration: args.warmup,
        max_ops: args.max_ops,
    };
    let warmup = if args.warmup.is_zero() {
        None
    } else {
        Some(load::run(load, op.clone()).await)
    };
    let cpu_before = cpu_snapshot(stack);
    let stats = load::run(
        Load {
            duration: args.duration,
            ..load
        },
        op,
    )
    .await;
    let cpu_after = cpu_snapshot(stack);
    let mut cpu_us_per_op = BTreeMap::new();
    for (name, after) in &cpu_after {
        if let Some(before) = cpu_before.get(name) {
            if stats.ok > 0 {
                let spent = after.saturating_sub(*before).as_secs_f64() * 1e6;
                cpu_us_per_op.insert(*name, spent / stats.ok as f64);
            }
        }
    }
    let point = Point {
        kind,
        algorithm: algorithm.to_owned(),
        stats,
        cpu_us_per_op,
        warmup_errors: warmup.as_ref().map_or(0, |w| w.errors),
        warmup_error_samples: warmup.map(|w| w.error_samples).unwrap_or_default(),
    };
    eprintln!("  {}", row(&point));
    point
}

fn cpu_snapshot(stack: Option<&Stack>) -> BTreeMap<&'static str, Duration> {
    let mut snapshot = BTreeMap::new();
    if let Some(stack) = stack {
        for (name, cpu) in stack.cpu_times() {
            if let Some(cpu) = cpu {
                snapshot.insert(name, cpu);
            }
        }
        if let Some(own) = services::own_cpu_time() {
            snapshot.insert("bench", own);
        }
    }
    snapshot
}

/// The points of one configuration (one algorithm, or the given URLs).
async fn measure_stack(
    args: &Args,
    http: &reqwest::Client,
    urls: &Urls,
    stack: Option<&Stack>,
    algorithm: &str,
    primary: bool,
    points: &mut Vec<Point>,
) -> Result<(), String> {
    let highest = args.concurrency.iter().copied().max().unwrap_or(1);
    let wanted = |point: &str| args.points.iter().any(|p| p == point);
    let concurrencies = if primary {
        args.concurrency.clone()
    } else {
        vec![highest]
    };
    for concurrency in concurrencies {
        // The ceiling right before the full call at the same concurrency: both see the same
        // machine.
        if primary && wanted("ceiling") {
            let ceiling = flows::ceiling(http.clone(), &urls.webapp);
            points.push(measure(args, stack, "ceiling", algorithm, concurrency, ceiling).await);
        }
        let rounds = if primary && concurrency == highest && wanted("ceiling") {
            args.rounds
        } else {
            1
        };
        for _ in 0..rounds {
            if wanted("full") {
                let full = flows::full_call(http.clone(), &urls.webapp, &args.client.user);
                points.push(measure(args, stack, "full_call", algorithm, concurrency, full).await);
            }
            // And right after: on a shared machine the two ceilings show how much the machine
            // changed meanwhile; the ratio is taken against the higher one.
            if primary && wanted("ceiling") && wanted("full") {
                let ceiling = flows::ceiling(http.clone(), &urls.webapp);
                points.push(measure(args, stack, "ceiling", algorithm, concurrency, ceiling).await);
            }
        }
    }
    if wanted("as") {
        let pair = flows::pair(http.clone(), &urls.authorization_server, &args.client);
        points.push(
            measure(
                args,
                stack,
                "authorization_server",
                algorithm,
                args.component_concurrency,
                pair,
            )
            .await,
        );
    }
    if wanted("rs") {
        let token = FreshToken::start(
            http.clone(),
            &urls.authorization_server,
            &args.client,
            Duration::from_secs(1),
        )
        .await
        .map_err(|err| format!("cannot get an access token: {err}"))?;
        let call = token.resource_call(http.clone(), &urls.resource_server, &args.client.user);
        points.push(
            measure(
                args,
                stack,
                "resource_server",
                algorithm,
                args.component_concurrency,
                call,
            )
            .await,
        );
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), String> {
    // --tls: a development CA and a certificate per service, for this run only.
    let pki = if args.tls {
        let dir = std::env::temp_dir().join(format!("bench-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        common::dev_certs::ensure(&dir)?;
        Some(dir)
    } else {
        None
    };
    let result = run_with(args, pki.as_deref()).await;
    if let Some(dir) = pki {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn run_with(args: Args, pki: Option<&std::path::Path>) -> Result<(), String> {
    let http = http_client(pki.map(|dir| dir.join("ca.pem")).as_deref())?;
    let load_before = load_average();
    let mut points = Vec::new();
    let mut rss: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mode;
    if let Some(urls) = &args.targets {
        mode = "urls";
        eprintln!("bench: measuring the services at {urls:?}");
        measure_stack(&args, &http, urls, None, "configured", true, &mut points).await?;
    } else {
        mode = if args.tls {
            "processes, TLS on every hop"
        } else {
            "processes"
        };
        let bin_dir = match &args.bin_dir {
            Some(dir) => dir.clone(),
            None => default_bin_dir()?,
        };
        if args.build {
            build_services()?;
        }
        if let Some(dir) = &args.log_dir {
            std::fs::create_dir_all(dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        let launch = Launch {
            bin_dir,
            rust_log: args.rust_log.clone(),
            log_format: args.log_format.clone(),
            log_dir: args.log_dir.clone(),
            pki: pki.map(std::path::Path::to_path_buf),
        };
        for (index, algorithm) in args.algorithms.iter().enumerate() {
            eprintln!("bench: SIGNING_ALGORITHM={algorithm}: starting the three services");
            let stack = Stack::start(&launch, algorithm, &http).await?;
            let measured = measure_stack(
                &args,
                &http,
                &stack.urls,
                Some(&stack),
                algorithm,
                index == 0,
                &mut points,
            )
            .await;
            let peaks = stack
                .peak_rss_kib()
                .into_iter()
                .filter_map(|(name, kib)| kib.map(|kib| (name, kib)))
                .collect();
            rss.insert(algorithm.clone(), peaks);
            stack.stop().await;
            measured?;
        }
    }
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        mode,
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpu_model(),
            memory_mib: memory_mib(),
            load_average_before: load_before,
            load_average_after: load_average(),
        },
        summary: summarize(&args, &points, rss),
        points,
    };
    print_table(&report);
    write_json(&args.json, &report)?;
    // A run with failed operations measured something other than the system working: the
    // figures are printed and written all the same, and the exit status says so.
    match report.summary.errors {
        0 => Ok(()),
        errors => Err(format!("{errors} operations failed (see the errors above)")),
    }
}

fn summarize(
    args: &Args,
    points: &[Point],
    rss: BTreeMap<String, BTreeMap<&'static str, u64>>,
) -> Summary {
    let highest = args.concurrency.iter().copied().max().unwrap_or(1);
    let primary = points
        .first()
        .map(|p| p.algorithm.clone())
        .unwrap_or_default();
    let find = |kind: &str, concurrency: usize| {
        points.iter().find(|p| {
            p.kind == kind && p.algorithm == primary && p.stats.concurrency == concurrency
        })
    };
    let sequence: Vec<&Point> = points
        .iter()
        .filter(|p| {
            p.algorithm == primary
                && p.stats.concurrency == highest
                && (p.kind == "ceiling" || p.kind == "full_call")
        })
        .collect();
    let rounds: Vec<Round> = sequence
        .windows(3)
        .filter_map(|window| match window {
            [before, full, after]
                if before.kind == "ceiling"
                    && full.kind == "full_call"
                    && after.kind == "ceiling" =>
            {
                round(before, full, after)
            }
            _ => None,
        })
        .collect();
    let median = lower_median(rounds.clone(), |r| r.ratio);
    let cpu_ratio = lower_median(rounds.iter().filter_map(|r| r.cpu_ratio).collect(), |r| *r);
    let ceiling = median.as_ref().map(|r| r.ceiling_per_second);
    let full = median.as_ref().map(|r| r.full_call_per_second);
    let ratio = median.as_ref().map(|r| r.ratio);
    let ratio_high = median.as_ref().map(|r| r.ratio_against_lower_ceiling);
    let p50 = find("full_call", 1).map(|p| p.stats.p50_ms);
    let rss_met = if rss.is_empty() {
        None
    } else {
        Some(
            rss.values()
                .flat_map(|peaks| peaks.values())
                .all(|&kib| kib <= TARGET_RSS_KIB),
        )
    };
    Summary {
        rounds,
        ceiling_per_second: ceiling,
        full_call_per_second: full,
        ratio_to_quarter_ceiling: ratio,
        ratio_against_lower_ceiling: ratio_high,
        cpu_ratio,
        ratio_concurrency: highest,
        full_call_p50_ms_at_1: p50,
        peak_rss_kib: rss,
        bench_peak_rss_kib: services::own_peak_rss_kib(),
        ratio_target_met: ratio.map(|r| r >= TARGET_RATIO),
        p50_target_met: p50.map(|p| p < TARGET_P50_MS),
        rss_target_met: rss_met,
        errors: points
            .iter()
            .map(|p| p.stats.errors + p.warmup_errors)
            .sum(),
    }
}

/// The middle item by `key` (the lower of the two middle ones for an even count).
fn lower_median<T>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = items.len().checked_sub(1)? / 2;
    items.into_iter().nth(middle)
}

fn round(before: &Point, full: &Point, after: &Point) -> Option<Round> {
    let (low, high) = (
        before.stats.per_second.min(after.stats.per_second),
        before.stats.per_second.max(after.stats.per_second),
    );
    if low <= 0.0 {
        return None;
    }
    let cpu = |point: &Point| -> Option<f64> {
        (!point.cpu_us_per_op.is_empty()).then(|| point.cpu_us_per_op.values().sum())
    };
    let cpu_ratio = match (cpu(before), cpu(full), cpu(after)) {
        (Some(before), Some(full), Some(after)) if before + after > 0.0 => {
            Some(full / (4.0 * (before + after) / 2.0))
        }
        _ => None,
    };
    let full_per_second = full.stats.per_second;
    Some(Round {
        full_call_per_second: full_per_second,
        ceiling_per_second: high,
        ratio: full_per_second / (high / 4.0),
        ratio_against_lower_ceiling: full_per_second / (low / 4.0),
        cpu_ratio,
    })
}

fn label(kind: &str) -> &'static str {
    match kind {
        "ceiling" => "ceiling: GET /healthz",
        "full_call" => "full user call (webapp)",
        "authorization_server" => "AS alone: authorize+token",
        "resource_server" => "RS alone: validated call",
        _ => "?",
    }
}

const HEADER: &str = "point                       alg      conc     ops/s   p50 ms   p90 ms   p99 ms  errors  CPU µs/op: webapp    AS    RS  bench";

fn row(point: &Point) -> String {
    let cpu = |name: &str| {
        point
            .cpu_us_per_op
            .get(name)
            .map_or_else(|| "-".to_owned(), |us| format!("{us:.0}"))
    };
    let s = &point.stats;
    format!(
        "{:<27} {:<7} {:>5} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>7}  {:>16} {:>5} {:>5} {:>6}",
        label(point.kind),
        point.algorithm,
        s.concurrency,
        s.per_second,
        s.p50_ms,
        s.p90_ms,
        s.p99_ms,
        s.errors,
        cpu(services::WEBAPP),
        cpu(services::AUTHORIZATION_SERVER),
        cpu(services::RESOURCE_SERVER),
        cpu("bench"),
    )
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
}

fn print_table(report: &Report) {
    let m = &report.machine;
    println!();
    println!(
        "machine: {} CPUs, {}, {} MiB; load average before {} / after {}",
        m.cpus, m.cpu_model, m.memory_mib, m.load_average_before, m.load_average_after
    );
    println!(
        "{} s measured per point after {} s of warm-up; services as {}",
        report.duration_s, report.warmup_s, report.mode
    );
    println!();
    println!("{HEADER}");
    for point in &report.points {
        println!("{}", row(point));
    }
    for point in report.points.iter().filter(|p| p.stats.errors > 0) {
        println!(
            "errors in {} {} c={}: {}",
            label(point.kind),
            point.algorithm,
            point.stats.concurrency,
            point.stats.error_samples.join(" | ")
        );
    }
    for point in report.points.iter().filter(|p| p.warmup_errors > 0) {
        println!(
            "errors in the warm-up of {} {} c={}: {} ({})",
            label(point.kind),
            point.algorithm,
            point.stats.concurrency,
            point.warmup_errors,
            point.warmup_error_samples.join(" | ")
        );
    }
    let s = &report.summary;
    println!();
    if !s.peak_rss_kib.is_empty() {
        println!("peak RSS (VmHWM), MiB:");
        for (algorithm, peaks) in &s.peak_rss_kib {
            let line: Vec<String> = peaks
                .iter()
                .map(|(name, kib)| format!("{name} {:.1}", *kib as f64 / 1024.0))
                .collect();
            println!("  {algorithm:<6} {}", line.join(", "));
        }
        if let Some(kib) = s.bench_peak_rss_kib {
            println!("  (load generator {:.1})", kib as f64 / 1024.0);
        }
    }
    match (
        s.ratio_to_quarter_ceiling,
        s.ceiling_per_second,
        s.full_call_per_second,
    ) {
        (Some(ratio), Some(ceiling), Some(full)) => {
            println!(
                "full call / (ceiling / 4) at concurrency {}, median of {} round(s): {full:.0} / ({ceiling:.0} / 4) = {ratio:.2}  (target >= {TARGET_RATIO}: {})",
                s.ratio_concurrency,
                s.rounds.len(),
                verdict(s.ratio_target_met)
            );
            if let Some(high) = s.ratio_against_lower_ceiling {
                println!("  (against the lower of its two neighbouring ceilings: {high:.2})");
            }
            let each: Vec<String> = s.rounds.iter().map(|r| format!("{:.2}", r.ratio)).collect();
            println!("  each round, in order: {}", each.join(", "));
            if let Some(cpu) = s.cpu_ratio {
                println!(
                    "  CPU of a full call / CPU of four ceiling requests (all processes), median: {cpu:.2}  (<= 2 lets the ratio reach 0.5)"
                );
            }
        }
        _ => println!("full call / (ceiling / 4): not measured"),
    }
    match s.full_call_p50_ms_at_1 {
        Some(p50) => println!(
            "full call p50 at concurrency 1: {p50:.3} ms  (target < {TARGET_P50_MS} ms: {})",
            verdict(s.p50_target_met)
        ),
        None => println!("full call p50 at concurrency 1: not measured"),
    }
    println!(
        "peak RSS of each service <= {} MiB: {}",
        TARGET_RSS_KIB / 1024,
        verdict(s.rss_target_met)
    );
    println!("errors: {}", s.errors);
}

fn write_json(path: &PathBuf, report: &Report) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(report)
        .map_err(|err| format!("cannot serialise the report: {err}"))?;
    std::fs::write(path, json + "\n")
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    println!("figures written to {}", path.display());
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|avg| avg.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn defaults_and_flags() {
        let args = parse(&[]).unwrap().unwrap();
        assert_eq!(args.concurrency, vec![1, 16, 64]);
        assert_eq!(args.rounds, 3);
        assert!(args.targets.is_none() && args.build);
        let args = parse(&["--duration", "0.5", "--concurrency", "2,4", "--no-build"])
            .unwrap()
            .unwrap();
        assert_eq!(args.duration, Duration::from_millis(500));
        assert_eq!(args.concurrency, vec![2, 4]);
        assert!(!args.build);
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    fn point(kind: &'static str, per_second: f64, cpu_us: f64) -> Point {
        Point {
            kind,
            algorithm: "EdDSA".into(),
            stats: Stats {
                concurrency: 64,
                ok: 1,
                errors: 0,
                error_samples: Vec::new(),
                elapsed_s: 1.0,
                per_second,
                p50_ms: 1.0,
                p90_ms: 1.0,
                p99_ms: 1.0,
                max_ms: 1.0,
            },
            cpu_us_per_op: BTreeMap::from([("webapp", cpu_us)]),
            warmup_errors: 0,
            warmup_error_samples: Vec::new(),
        }
    }

    #[test]
    fn each_full_call_is_judged_against_its_neighbouring_ceilings_and_the_median_round_counts() {
        let args = parse(&["--concurrency", "64"]).unwrap().unwrap();
        let points = [
            point("ceiling", 40_000.0, 40.0),
            point("full_call", 4_000.0, 400.0), // 4000 / (44000 / 4) = 0.36
            point("ceiling", 44_000.0, 40.0),
            point("full_call", 6_000.0, 320.0), // 6000 / (48000 / 4) = 0.50
            point("ceiling", 48_000.0, 40.0),
            point("full_call", 5_000.0, 360.0), // 5000 / (48000 / 4) = 0.42
            point("ceiling", 40_000.0, 40.0),
        ];
        let summary = summarize(&args, &points, BTreeMap::new());
        let ratios: Vec<String> = summary
            .rounds
            .iter()
            .map(|r| format!("{:.2}", r.ratio))
            .collect();
        assert_eq!(ratios, ["0.36", "0.50", "0.42"]);
        assert_eq!(summary.full_call_per_second, Some(5_000.0));
        assert_eq!(summary.ceiling_per_second, Some(48_000.0));
        assert_eq!(
            summary
                .ratio_against_lower_ceiling
                .map(|r| format!("{r:.2}")),
            Some("0.50".to_owned())
        );
        // CPU: 400 / 160, 320 / 160, 360 / 160 -> median 2.25
        assert_eq!(summary.cpu_ratio, Some(2.25));
        assert_eq!(summary.ratio_target_met, Some(false));
    }

    #[test]
    fn failures_in_the_warm_up_count_as_failures() {
        let args = parse(&["--concurrency", "64"]).unwrap().unwrap();
        let mut failed_warm_up = point("full_call", 5_000.0, 360.0);
        failed_warm_up.warmup_errors = 3;
        let points = [point("ceiling", 40_000.0, 40.0), failed_warm_up];
        assert_eq!(summarize(&args, &points, BTreeMap::new()).errors, 3);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--concurrency", "0"]).is_err());
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--algorithms", "HS256"]).is_err());
        assert!(parse(&["--webapp", "http://x"]).is_err());
        assert!(parse(&["--duration"]).is_err());
        assert!(parse(&["--frobnicate", "1"]).is_err());
        assert!(parse(&["--tls"]).unwrap().unwrap().tls);
        let urls = ["--webapp", "http://w", "--authorization-server", "http://a"];
        let mut with_targets = urls.to_vec();
        with_targets.extend(["--resource-server", "http://r", "--tls"]);
        assert!(parse(&with_targets).is_err(), "--tls with given URLs");
    }
}
