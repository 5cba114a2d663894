//! Reloads the signing key directory without a restart: on SIGHUP, and whenever a poll sees the
//! directory change. A directory that does not load keeps the current key set (nothing
//! half-loaded is ever used).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::Algorithm;

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
    // Taken now, right after the keys were loaded, not when the task first runs: a change made
    // in between is seen as one.
    let seen = fingerprint(&dir);
    let watched = dir.clone();
    common::signals::spawn_reloader(
        ring,
        every,
        seen,
        move || fingerprint(&watched),
        move |ring: &KeyRing| match KeySet::load_dir(&dir, algorithm) {
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
        },
    );
}

/// Names, sizes and modification times of the directory's files: changes when a key is added,
/// removed or rewritten, or `ACTIVE` is.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
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
