//! The report: each point's figures, the summary judged against the targets, printed as a table
//! and written as JSON.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::cli::Kind;
use crate::load::Stats;
use crate::proc;
use crate::services;

/// The targets of the performance work (docs/performance.md).
const TARGET_RATIO: f64 = 0.5;
const TARGET_P50_MS: f64 = 1.0;
const TARGET_RSS_KIB: u64 = 30 * 1024;

/// One measured point.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// `ceiling`, `full_call`, `authorization_server` (authorize + token pairs) or
    /// `resource_server` (validated calls).
    pub kind: Kind,
    /// The services' SIGNING_ALGORITHM (`configured` when measuring given URLs).
    pub algorithm: String,
    #[serde(flatten)]
    pub stats: Stats,
    /// CPU time (user + system) per successful operation, in microseconds, of each service process
    /// and of the load generator (`bench`), over the measured window.
    pub cpu_us_per_op: BTreeMap<&'static str, f64>,
    /// Operations that failed during the warm-up: not measured, but a failure all the same.
    pub warmup_errors: u64,
    pub warmup_error_samples: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    cpus: usize,
    cpu_model: String,
    memory_mib: u64,
    load_average_before: String,
    load_average_after: String,
}

impl Machine {
    /// The machine now, with the load average taken before the run.
    pub fn now(load_average_before: String) -> Self {
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: proc::cpu_model(),
            memory_mib: proc::memory_mib(),
            load_average_before,
            load_average_after: proc::load_average(),
        }
    }
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
pub struct Summary {
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
pub struct Report {
    pub command: String,
    /// How the services ran: `processes`, `processes, TLS on every hop` or `urls`.
    pub mode: &'static str,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub machine: Machine,
    pub points: Vec<Point>,
    pub summary: Summary,
}

impl Report {
    /// The failed operations, the warm-ups' included.
    pub fn errors(&self) -> u64 {
        self.summary.errors
    }
}

/// The rounds at the `highest` concurrency, the headline figures and the targets' verdicts.
pub fn summarize(
    highest: usize,
    points: &[Point],
    rss: BTreeMap<String, BTreeMap<&'static str, u64>>,
) -> Summary {
    let primary = points
        .first()
        .map(|p| p.algorithm.clone())
        .unwrap_or_default();
    let find = |kind: Kind, concurrency: usize| {
        points.iter().find(|p| {
            p.kind == kind && p.algorithm == primary && p.stats.concurrency == concurrency
        })
    };
    let sequence: Vec<&Point> = points
        .iter()
        .filter(|p| {
            p.algorithm == primary
                && p.stats.concurrency == highest
                && matches!(p.kind, Kind::Ceiling | Kind::FullCall)
        })
        .collect();
    let rounds: Vec<Round> = sequence
        .windows(3)
        .filter_map(|window| match window {
            [before, full, after]
                if before.kind == Kind::Ceiling
                    && full.kind == Kind::FullCall
                    && after.kind == Kind::Ceiling =>
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
    let p50 = find(Kind::FullCall, 1).map(|p| p.stats.p50_ms);
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
        bench_peak_rss_kib: proc::Process::Own.peak_rss_kib(),
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

fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::Ceiling => "ceiling: GET /healthz",
        Kind::FullCall => "full user call (webapp)",
        Kind::AuthorizationServer => "AS alone: authorize+token",
        Kind::ResourceServer => "RS alone: validated call",
    }
}

const HEADER: &str = "point                       alg      conc     ops/s   p50 ms   p90 ms   p99 ms  errors  CPU µs/op: webapp    AS    RS  bench";

/// A point's line of the table.
pub fn row(point: &Point) -> String {
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

pub fn print_table(report: &Report) {
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

pub fn write_json(path: &Path, report: &Report) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn point(kind: Kind, per_second: f64, cpu_us: f64) -> Point {
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
        let points = [
            point(Kind::Ceiling, 40_000.0, 40.0),
            point(Kind::FullCall, 4_000.0, 400.0), // 4000 / (44000 / 4) = 0.36
            point(Kind::Ceiling, 44_000.0, 40.0),
            point(Kind::FullCall, 6_000.0, 320.0), // 6000 / (48000 / 4) = 0.50
            point(Kind::Ceiling, 48_000.0, 40.0),
            point(Kind::FullCall, 5_000.0, 360.0), // 5000 / (48000 / 4) = 0.42
            point(Kind::Ceiling, 40_000.0, 40.0),
        ];
        let summary = summarize(64, &points, BTreeMap::new());
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
        let mut failed_warm_up = point(Kind::FullCall, 5_000.0, 360.0);
        failed_warm_up.warmup_errors = 3;
        let points = [point(Kind::Ceiling, 40_000.0, 40.0), failed_warm_up];
        assert_eq!(summarize(64, &points, BTreeMap::new()).errors, 3);
    }
}
