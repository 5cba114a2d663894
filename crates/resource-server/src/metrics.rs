//! The resource server's own metrics, in its service's registry (next to the HTTP metrics).

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::error::Error;
use crate::jwks::FetchReason;

/// `token_validations_accepted_total` and `token_validations_refused_total{reason}`, with
/// `reason` one of [`Error::reason`]'s values; `jwks_fetches_total{reason, outcome}`, with
/// `reason` one of [`FetchReason::ALL`] and `outcome` `ok` or `failed`.
#[derive(Clone)]
pub struct Metrics {
    accepted: IntCounter,
    refused: IntCounterVec,
    jwks_fetches: IntCounterVec,
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
        let jwks_fetches = IntCounterVec::new(
            Opts::new(
                "jwks_fetches_total",
                "Fetches of the authorization server's JWKS, by what caused them and outcome",
            ),
            &["reason", "outcome"],
        )?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(jwks_fetches.clone()))?;
        for reason in Error::REASONS {
            refused.with_label_values(&[reason]);
        }
        for reason in FetchReason::ALL {
            for outcome in [FETCH_OK, FETCH_FAILED] {
                jwks_fetches.with_label_values(&[reason.as_str(), outcome]);
            }
        }
        Ok(Self {
            accepted,
            refused,
            jwks_fetches,
        })
    }

    pub fn accepted(&self) {
        self.accepted.inc();
    }

    pub fn refused(&self, error: &Error) {
        self.refused.with_label_values(&[error.reason()]).inc();
    }

    pub fn jwks_fetched(&self, reason: FetchReason, succeeded: bool) {
        let outcome = if succeeded { FETCH_OK } else { FETCH_FAILED };
        self.jwks_fetches
            .with_label_values(&[reason.as_str(), outcome])
            .inc();
    }
}

const FETCH_OK: &str = "ok";
const FETCH_FAILED: &str = "failed";
