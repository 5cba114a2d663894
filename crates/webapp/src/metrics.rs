//! The webapp's own metrics, in its service's registry (next to the HTTP metrics): its calls to
//! the authorization server and the resource server.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::error::{Error, Step};

const STEPS: [Step; 3] = [Step::Authorize, Step::Token, Step::Resource];

/// `upstream_request_duration_seconds{step}` (every call, failed or not) and
/// `upstream_errors_total{step,reason}` with `reason` one of [`Error::upstream_reason`]'s values.
#[derive(Clone)]
pub struct Metrics {
    duration: HistogramVec,
    errors: IntCounterVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "upstream_request_duration_seconds",
                "Time taken by each step's call to the authorization server or the resource server",
            )
            .buckets(common::observability::LATENCY_BUCKETS.to_vec()),
            &["step"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "upstream_errors_total",
                "Failed calls to the authorization server or the resource server, by step and reason",
            ),
            &["step", "reason"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        for step in STEPS {
            duration.with_label_values(&[step.as_str()]);
            for reason in Error::UPSTREAM_REASONS {
                errors.with_label_values(&[step.as_str(), reason]);
            }
        }
        Ok(Self { duration, errors })
    }

    pub fn observe(&self, step: Step, elapsed: Duration, error: Option<&Error>) {
        self.duration
            .with_label_values(&[step.as_str()])
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = error.and_then(Error::upstream_reason) {
            self.errors
                .with_label_values(&[step.as_str(), reason])
                .inc();
        }
    }
}
