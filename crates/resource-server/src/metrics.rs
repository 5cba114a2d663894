//! The resource server's own metrics, in its service's registry (next to the HTTP metrics).

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::error::Error;

/// `token_validations_accepted_total` and `token_validations_refused_total{reason}`, with
/// `reason` one of [`Error::reason`]'s values.
#[derive(Clone)]
pub struct Metrics {
    accepted: IntCounter,
    refused: IntCounterVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let accepted = IntCounter::new(
            "token_validations_accepted_total",
            "Protected requests whose access token passed every check",
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "token_validations_refused_total",
                "Protected requests refused before or while checking their access token, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        for reason in Error::REASONS {
            refused.with_label_values(&[reason]);
        }
        Ok(Self { accepted, refused })
    }

    pub fn accepted(&self) {
        self.accepted.inc();
    }

    pub fn refused(&self, error: &Error) {
        self.refused.with_label_values(&[error.reason()]).inc();
    }
}
