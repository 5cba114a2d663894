//! The load generator: N concurrent workers repeat one operation until a deadline (and, when
//! asked, until a total count), and every completed operation's latency is kept.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One operation: `Ok` when the answer is the expected one, `Err` with a short reason otherwise.
pub type OpFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type Op = Arc<dyn Fn() -> OpFuture + Send + Sync>;

/// How much load, for how long.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub concurrency: usize,
    pub duration: Duration,
    /// At most this many operations are started (over all workers).
    pub max_ops: Option<u64>,
}

/// What one run measured. Latencies are those of the successful operations.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub concurrency: usize,
    pub ok: u64,
    pub errors: u64,
    /// Up to a few distinct error reasons, as seen.
    pub error_samples: Vec<String>,
    pub elapsed_s: f64,
    /// Successful operations per second.
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

const MAX_ERROR_SAMPLES: usize = 5;

#[derive(Default)]
struct Shared {
    errors: AtomicU64,
    started: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Shared {
    fn record_error(&self, reason: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if samples.len() < MAX_ERROR_SAMPLES && !samples.contains(&reason) {
            samples.push(reason);
        }
    }
}

/// Runs `op` with `load.concurrency` workers for `load.duration`.
pub async fn run(load: Load, op: Op) -> Stats {
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let deadline = start + load.duration;
    let mut workers = Vec::with_capacity(load.concurrency);
    for _ in 0..load.concurrency.max(1) {
        let op = op.clone();
        let shared = shared.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(4096);
            while Instant::now() < deadline {
                if let Some(max) = load.max_ops {
                    if shared.started.fetch_add(1, Ordering::Relaxed) >= max {
                        break;
                    }
                }
                let began = Instant::now();
                match op().await {
                    Ok(()) => {
                        let micros = began.elapsed().as_micros();
                        latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                    }
                    Err(reason) => shared.record_error(reason),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        match worker.await {
            Ok(mine) => latencies.extend(mine),
            Err(err) => shared.record_error(format!("worker failed: {err}")),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let samples = shared
        .samples
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let ok = latencies.len() as u64;
    Stats {
        concurrency: load.concurrency,
        ok,
        errors: shared.errors.load(Ordering::Relaxed),
        error_samples: samples,
        elapsed_s: elapsed,
        per_second: if elapsed > 0.0 {
            ok as f64 / elapsed
        } else {
            0.0
        },
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().map_or(0.0, |&us| f64::from(us) / 1000.0),
    }
}

/// The nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).map_or(0.0, |&us| f64::from(us) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&sorted, 0.50), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7000], 0.9), 7.0);
    }

    #[tokio::test]
    async fn counts_successes_errors_and_the_cap() {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        let op: Op = Arc::new(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                if n.is_multiple_of(2) {
                    Ok(())
                } else {
                    Err("odd".to_owned())
                }
            })
        });
        let load = Load {
            concurrency: 4,
            duration: Duration::from_secs(5),
            max_ops: Some(10),
        };
        let stats = run(load, op).await;
        assert_eq!(stats.ok + stats.errors, 10);
        assert_eq!(stats.errors, 5);
        assert_eq!(stats.error_samples, vec!["odd".to_owned()]);
    }
}
