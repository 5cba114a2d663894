//! The authorization server's own metrics, in its service's registry (next to the HTTP metrics).

use common::Scope;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::store::Redemption;

/// `oauth_access_tokens_issued_total{scope}`, `oauth_authorization_codes_issued_total`,
/// `oauth_authorization_code_redemptions_total{outcome}` with `outcome` one of `redeemed`,
/// `expired`, `replayed`, `unknown`, and `oauth_signing_key_reloads_total{result}` with `result`
/// `reloaded` or `failed` (a key directory that changed but did not load: alert on it).
#[derive(Clone)]
pub struct Metrics {
    tokens_issued: IntCounterVec,
    codes_issued: IntCounter,
    redemptions: IntCounterVec,
    key_reloads: IntCounterVec,
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
        let key_reloads = IntCounterVec::new(
            Opts::new(
                "oauth_signing_key_reloads_total",
                "Reloads of the signing key directory, by result",
            ),
            &["result"],
        )?;
        registry.register(Box::new(tokens_issued.clone()))?;
        registry.register(Box::new(codes_issued.clone()))?;
        registry.register(Box::new(redemptions.clone()))?;
        registry.register(Box::new(key_reloads.clone()))?;
        // Every series from the start, so a rate over a counter never misses its first increment.
        for scope in Scope::ALL {
            tokens_issued.with_label_values(&[scope.as_str()]);
        }
        for outcome in ["redeemed", "expired", "replayed", "unknown"] {
            redemptions.with_label_values(&[outcome]);
        }
        for result in ["reloaded", "failed"] {
            key_reloads.with_label_values(&[result]);
        }
        Ok(Self {
            tokens_issued,
            codes_issued,
            redemptions,
            key_reloads,
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

    /// A reload of the signing key directory, which loaded or did not.
    pub fn key_reload(&self, loaded: bool) {
        let result = if loaded { "reloaded" } else { "failed" };
        self.key_reloads.with_label_values(&[result]).inc();
    }
}
