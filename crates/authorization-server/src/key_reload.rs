//! Reloads the signing key directory without a restart: on SIGHUP, and whenever a poll sees the
//! directory change. A directory that does not load keeps the current key set (nothing
//! half-loaded is ever used).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use jsonwebtoken::Algorithm;
use tracing::Instrument;

use crate::keys::{KeyRing, KeySet};
use crate::metrics::Metrics;

/// Spawns the reloader; it stops once `ring` is dropped. Its log lines keep the fields of the
/// span it was spawned in (the service's). SIGHUP is handled from the moment this returns.
pub fn spawn(
    ring: &Arc<KeyRing>,
    dir: PathBuf,
    algorithm: Algorithm,
    every: Duration,
    metrics: Metrics,
) {
    let ring = Arc::downgrade(ring);
    let hangups = common::signals::hangups();
    // Taken now, right after the keys were loaded, not when the task first runs: a change made
    // in between is seen as one.
    let seen = fingerprint(&dir);
    tokio::spawn(
        async move { reload_loop(ring, dir, algorithm, every, seen, hangups, metrics).await }
            .instrument(tracing::Span::current()),
    );
}

async fn reload_loop(
    ring: Weak<KeyRing>,
    dir: PathBuf,
    algorithm: Algorithm,
    every: Duration,
    mut seen: Fingerprint,
    mut hangups: common::signals::Hangups,
    metrics: Metrics,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            () = common::signals::next_hangup(&mut hangups) => true,
        };
        let Some(ring) = ring.upgrade() else { return };
        let now = fingerprint(&dir);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match KeySet::load_dir(&dir, algorithm) {
            Ok(set) => {
                tracing::info!(
                    service = crate::SERVICE_NAME,
                    active = set.active().kid(),
                    published = ?set.kids(),
                    "signing keys reloaded"
                );
                ring.replace(set);
                metrics.key_reload(true);
            }
            Err(err) => {
                tracing::error!(
                    service = crate::SERVICE_NAME,
                    error = %err,
                    "signing keys not reloaded; keeping the current set"
                );
                metrics.key_reload(false);
            }
        }
    }
}

/// Names, sizes and modification times of the directory's files: changes when a key is added,
/// removed or rewritten, or `ACTIVE` is.
type Fingerprint = Vec<(String, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            Some((name, meta.len(), meta.modified().ok()))
        })
        .collect();
    files.sort();
    files
}
