//! The authorization server's own metrics, in its service's registry (next to the HTTP metrics).

use common::Scope;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::store::Redemption;

/// `oauth_access_tokens_issued_total{scope}`, `oauth_authorization_codes_issued_total`,
/// `oauth_authorization_code_redemptions_total{outcome}` with `outcome` one of `redeemed`,
/// `expired`, `replayed`, `unknown`.
#[derive(Clone)]
pub struct Metrics {
    tokens_issued: IntCounterVec,
    codes_issued: IntCounter,
    redemptions: IntCounterVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let tokens_issued = IntCounterVec::new(
            Opts::new("oauth_access_tokens_issued_total", "Access tokens issued"),
            &["scope"],
        )?;
        let codes_issued = IntCounter::new(
            "oauth_authorization_codes_issued_total",
            "Authorization codes issued",
        )?;
        let redemptions = IntCounterVec::new(
            Opts::new(
                "oauth_authorization_code_redemptions_total",
                "Authorization codes presented at the token endpoint by an authenticated client, by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(tokens_issued.clone()))?;
        registry.register(Box::new(codes_issued.clone()))?;
        registry.register(Box::new(redemptions.clone()))?;
        // Every series from the start, so a rate over a counter never misses its first increment.
        for scope in Scope::ALL {
            tokens_issued.with_label_values(&[scope.as_str()]);
        }
        for outcome in ["redeemed", "expired", "replayed", "unknown"] {
            redemptions.with_label_values(&[outcome]);
        }
        Ok(Self {
            tokens_issued,
            codes_issued,
            redemptions,
        })
    }

    pub fn token_issued(&self, scope: Scope) {
        self.tokens_issued
            .with_label_values(&[scope.as_str()])
            .inc();
    }

    pub fn code_issued(&self) {
        self.codes_issued.inc();
    }

    pub fn code_presented(&self, redemption: &Redemption) {
        let outcome = match redemption {
            Redemption::Redeemed(_) => "redeemed",
            Redemption::Expired => "expired",
            Redemption::AlreadyRedeemed => "replayed",
            Redemption::Unknown => "unknown",
        };
        self.redemptions.with_label_values(&[outcome]).inc();
    }
}
