//! Reloads the signing key directory without a restart: on SIGHUP, and whenever a poll sees the
//! directory change. A directory that does not load keeps the current key set (nothing
//! half-loaded is ever used).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// The directory's files, names and contents: changes when a key is added, removed or rewritten,
/// or `ACTIVE` is, however soon after the last change and whatever its size.
fn fingerprint(dir: &Path) -> u64 {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    common::signals::files_fingerprint(&files)
}
