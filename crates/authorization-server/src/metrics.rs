//! The authorization server's own metrics, in its service's registry (next to the HTTP metrics).

use oauth::Scope;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::store::Redemption;

/// `oauth_access_tokens_issued_total{scope}`, `oauth_authorization_codes_issued_total`,
/// `oauth_authorization_codes_refused_total{reason}` (a granted request that got
/// `temporarily_unavailable`) with `reason` one of `rate_limited`, `store_full`, `store_unavailable`,
/// `oauth_authorization_code_redemptions_total{outcome}` with `outcome` one of `redeemed`,
/// `expired`, `replayed`, `unknown`, and `oauth_signing_key_reloads_total{result}` with `result`
/// `reloaded` or `failed` (a key directory that changed but did not load: alert on it).
#[derive(Clone)]
pub struct Metrics {
    tokens_issued: IntCounterVec,
    codes_issued: IntCounter,
    codes_refused: IntCounterVec,
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
        let codes_refused = IntCounterVec::new(
            Opts::new(
                "oauth_authorization_codes_refused_total",
                "Granted authorization requests answered temporarily_unavailable, by reason",
            ),
            &["reason"],
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
        registry.register(Box::new(codes_refused.clone()))?;
        registry.register(Box::new(redemptions.clone()))?;
        registry.register(Box::new(key_reloads.clone()))?;
        // Every series from the start, so a rate over a counter never misses its first increment.
        for scope in Scope::ALL {
            tokens_issued.with_label_values(&[scope.as_str()]);
        }
        for reason in CodeRefusal::ALL {
            codes_refused.with_label_values(&[reason.as_str()]);
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
            codes_refused,
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

    pub fn code_refused(&self, reason: CodeRefusal) {
        self.codes_refused
            .with_label_values(&[reason.as_str()])
            .inc();
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

/// Why a granted authorization request got no code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Its address asked faster than `AUTHORIZE_RATE_PER_SECOND`.
    RateLimited,
    /// `MAX_LIVE_CODES` codes are live.
    StoreFull,
    /// The store (Redis) did not answer.
    StoreUnavailable,
}

impl CodeRefusal {
    const ALL: [Self; 3] = [Self::RateLimited, Self::StoreFull, Self::StoreUnavailable];

    fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::StoreFull => "store_full",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}
