//! The signals a service answers: Ctrl-C and SIGTERM stop it, SIGHUP reloads its keys and
//! certificates at once ([`spawn_reloader`], which also polls for changes).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

/// Completes on Ctrl-C or SIGTERM (what `docker stop` sends to PID 1).
pub async fn shutdown() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Reloads what `owner` holds from files: `reload` runs when `fingerprint()` differs from the
/// last one seen (checked every `every`, the first time one period from now) and at once on
/// SIGHUP. `seen` is the fingerprint of what `owner` was loaded from, taken before that load, so
/// that a change made since is not missed. SIGHUP is handled from the moment this returns; the
/// task stops once `owner` is dropped, and its log lines keep the fields of the current span.
/// Call within a Tokio runtime.
pub fn spawn_reloader<T, F>(
    owner: &Arc<T>,
    every: Duration,
    mut seen: F,
    fingerprint: impl Fn() -> F + Send + 'static,
    reload: impl Fn(&T) + Send + 'static,
) where
    T: Send + Sync + 'static,
    F: PartialEq + Send + 'static,
{
    let owner = Arc::downgrade(owner);
    let mut hangups = hangups();
    let watching = async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                () = next_hangup(&mut hangups) => true,
            };
            let Some(owner) = owner.upgrade() else { return };
            let now = fingerprint();
            if forced || now != seen {
                seen = now;
                reload(&owner);
            }
        }
    };
    tokio::spawn(watching.instrument(tracing::Span::current()));
}

/// A hash of the files' paths and contents, in the order given: the fingerprint for
/// [`spawn_reloader`] of what is loaded from them. Contents, not modification times: a rewrite
/// within one tick of the file system's clock, to the same size, is still a change.
pub fn files_fingerprint<P: AsRef<Path>>(files: &[P]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        let file = file.as_ref();
        file.hash(&mut hasher);
        std::fs::read(file).ok().hash(&mut hasher);
    }
    hasher.finish()
}

/// A SIGHUP listener, installed when created (a SIGHUP after that is never lost, nor fatal).
#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

/// Starts listening for SIGHUP; call within a Tokio runtime. `None` (polling only) if it cannot.
#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup())
        .inspect_err(|err| tracing::warn!(error = %err, "cannot listen for SIGHUP; polling only"))
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// Completes on the next SIGHUP; never, without a listener.
async fn next_hangup(hangups: &mut Hangups) {
    #[cfg(unix)]
    if let Some(signal) = hangups {
        if signal.recv().await.is_some() {
            return;
        }
    }
    let _ = hangups;
    std::future::pending::<()>().await;
}
