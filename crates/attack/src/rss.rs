//! The server's resident memory (VmRSS of /proc/PID/status), sampled every 100 ms for the whole
//! run, so that a scenario can ask for the peak of any stretch of time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Context, Error};

const PERIOD: Duration = Duration::from_millis(100);

/// When a sample was taken and its VmRSS in KiB; `None` once the process is gone.
type Sample = (Instant, Option<u64>);

pub struct Rss {
    pid: u32,
    samples: Arc<Mutex<Vec<Sample>>>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Rss {
    pub fn start(pid: u32) -> Result<Self, Error> {
        let first = read_kib(pid)?;
        let samples = Arc::new(Mutex::new(vec![(Instant::now(), Some(first))]));
        let recorded = samples.clone();
        let sampler = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PERIOD);
            loop {
                ticks.tick().await;
                let kib = read_kib(pid).ok();
                lock(&recorded).push((Instant::now(), kib));
            }
        });
        Ok(Self {
            pid,
            samples,
            sampler,
        })
    }

    /// VmRSS right now, in KiB.
    pub fn now_kib(&self) -> Result<u64, Error> {
        read_kib(self.pid)
    }

    /// The highest sample taken from `from` on (`None`: no sample yet).
    pub fn peak_since(&self, from: Instant) -> Option<u64> {
        lock(&self.samples)
            .iter()
            .filter(|(at, _)| *at >= from)
            .filter_map(|(_, kib)| *kib)
            .max()
    }

    /// Fails once a sample found the process gone: every later figure would be meaningless.
    pub fn alive(&self) -> Result<(), Error> {
        if lock(&self.samples).iter().any(|(_, kib)| kib.is_none()) {
            return Err(format!("the server process {} is gone", self.pid).into());
        }
        Ok(())
    }
}

impl Drop for Rss {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_kib(pid: u32) -> Result<u64, Error> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).context(format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path} has no VmRSS line").into())
}
