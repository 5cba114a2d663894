//! One run: the services started (or given), each point measured, the report made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use test_client::TestClient;

use crate::cli::{self, Args, Kind};
use crate::flows::{self, FreshToken};
use crate::load::{self, Load, Op};
use crate::proc;
use crate::report::{self, Machine, Point, Report};
use crate::services::{Launch, Stack, Urls};

/// The load generator's client; with `ca`, it trusts that PEM CA as well.
fn http_client(ca: Option<&Path>) -> Result<reqwest::Client, String> {
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

/// The authorization server's client for the flows by hand: `args`'s registered client.
fn test_client(http: &reqwest::Client, urls: &Urls, args: &Args) -> TestClient {
    TestClient::new(http.clone(), &urls.authorization_server, args.client())
}

/// Measures `op` at `concurrency`: a warm-up run, then the measured run, with the CPU time each
/// process spent in between.
async fn measure(
    args: &Args,
    stack: Option<&Stack>,
    kind: Kind,
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
    eprintln!("  {}", report::row(&point));
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
        if let Some(own) = proc::Process::Own.cpu_time() {
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
    let highest = args.highest_concurrency();
    let user = &args.user;
    let concurrencies = if primary {
        args.concurrency.clone()
    } else {
        vec![highest]
    };
    for concurrency in concurrencies {
        // The ceiling right before the full call at the same concurrency: both see the same
        // machine.
        if primary && args.wants(Kind::Ceiling) {
            let ceiling = flows::ceiling(http.clone(), &urls.webapp);
            points.push(measure(args, stack, Kind::Ceiling, algorithm, concurrency, ceiling).await);
        }
        let rounds = if primary && concurrency == highest && args.wants(Kind::Ceiling) {
            args.rounds
        } else {
            1
        };
        for _ in 0..rounds {
            if args.wants(Kind::FullCall) {
                let full = flows::full_call(http.clone(), &urls.webapp, user);
                let point = measure(args, stack, Kind::FullCall, algorithm, concurrency, full);
                points.push(point.await);
            }
            // And right after: on a shared machine the two ceilings show how much the machine
            // changed meanwhile; the ratio is taken against the higher one.
            if primary && args.wants(Kind::Ceiling) && args.wants(Kind::FullCall) {
                let ceiling = flows::ceiling(http.clone(), &urls.webapp);
                points.push(
                    measure(args, stack, Kind::Ceiling, algorithm, concurrency, ceiling).await,
                );
            }
        }
    }
    if args.wants(Kind::AuthorizationServer) {
        let pair = flows::pair(test_client(http, urls, args), user);
        points.push(
            measure(
                args,
                stack,
                Kind::AuthorizationServer,
                algorithm,
                args.component_concurrency,
                pair,
            )
            .await,
        );
    }
    if args.wants(Kind::ResourceServer) {
        let every = Duration::from_secs(1);
        let token = FreshToken::start(test_client(http, urls, args), user, every)
            .await
            .map_err(|err| format!("cannot get an access token: {err}"))?;
        let call = token.resource_call(http.clone(), &urls.resource_server, user);
        points.push(
            measure(
                args,
                stack,
                Kind::ResourceServer,
                algorithm,
                args.component_concurrency,
                call,
            )
            .await,
        );
    }
    Ok(())
}

/// Measures every point of `args`; an error when any operation failed (after the report).
pub async fn run(args: Args) -> Result<(), String> {
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

async fn run_with(args: Args, pki: Option<&Path>) -> Result<(), String> {
    let http = http_client(pki.map(|dir| dir.join("ca.pem")).as_deref())?;
    let load_before = proc::load_average();
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
        if args.build() {
            build_services()?;
        }
        if let Some(dir) = &args.log_dir {
            std::fs::create_dir_all(dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        let launch = Launch {
            bin_dir,
            rust_log: args.rust_log.clone(),
            log_format: args.log_format.as_ref().map(cli::name),
            log_dir: args.log_dir.clone(),
            pki: pki.map(Path::to_path_buf),
        };
        for (index, algorithm) in args.algorithms.iter().map(cli::name).enumerate() {
            eprintln!("bench: SIGNING_ALGORITHM={algorithm}: starting the three services");
            let stack = Stack::start(&launch, &algorithm, &http).await?;
            let measured = measure_stack(
                &args,
                &http,
                &stack.urls,
                Some(&stack),
                &algorithm,
                index == 0,
                &mut points,
            )
            .await;
            let peaks = stack
                .peak_rss_kib()
                .into_iter()
                .filter_map(|(name, kib)| kib.map(|kib| (name, kib)))
                .collect();
            rss.insert(algorithm, peaks);
            stack.stop().await;
            measured?;
        }
    }
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        mode,
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        machine: Machine::now(load_before),
        summary: report::summarize(args.highest_concurrency(), &points, rss),
        points,
    };
    report::print_table(&report);
    report::write_json(&args.json, &report)?;
    // A run with failed operations measured something other than the system working: the
    // figures are printed and written all the same, and the exit status says so.
    match report.errors() {
        0 => Ok(()),
        errors => Err(format!("{errors} operations failed (see the errors above)")),
    }
}
