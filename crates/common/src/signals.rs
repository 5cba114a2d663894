//! The signals a service answers: Ctrl-C and SIGTERM stop it, SIGHUP reloads its keys and
//! certificates at once.

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

/// A SIGHUP listener, installed when created (a SIGHUP after that is never lost, nor fatal).
#[cfg(unix)]
pub type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub type Hangups = Option<()>;

/// Starts listening for SIGHUP; call within a Tokio runtime. `None` (polling only) if it cannot.
#[cfg(unix)]
pub fn hangups() -> Hangups {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup())
        .inspect_err(|err| tracing::warn!(error = %err, "cannot listen for SIGHUP; polling only"))
        .ok()
}

#[cfg(not(unix))]
pub fn hangups() -> Hangups {
    None
}

/// Completes on the next SIGHUP; never, without a listener.
pub async fn next_hangup(hangups: &mut Hangups) {
    #[cfg(unix)]
    if let Some(signal) = hangups {
        if signal.recv().await.is_some() {
            return;
        }
    }
    let _ = hangups;
    std::future::pending::<()>().await;
}
