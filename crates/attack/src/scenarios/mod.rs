//! The scenarios, one module each, and what they share: the addresses, the services, the RSS
//! sampler and the legitimate loop.

pub mod authorize_flood;
pub mod junk_client_auth;
pub mod key_rotation;
pub mod slow_connections;

use std::net::IpAddr;
use std::time::Duration;

use crate::cli::Target;
use crate::error::Error;
use crate::http;
use crate::legit::Legit;
use crate::report::Report;
use crate::rss::Rss;

/// A call, legitimate or not, may take this long under attack before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One attack, configured by its command-line arguments.
pub trait Scenario {
    const NAME: &str;

    /// Attacks, recording figures and broken bounds in `report`; `Err` when it could not run.
    async fn attack(&self, ctx: &Ctx, report: &mut Report) -> Result<(), Error>;
}

pub struct Ctx {
    pub source: IpAddr,
    pub authorization_server: String,
    pub resource_server: String,
    webapp: String,
    legit_concurrency: usize,
    legit_pause: Duration,
    /// The legitimate side's client (bound to the legitimate address).
    pub legit: reqwest::Client,
    pub rss: Rss,
}

impl Ctx {
    pub fn new(target: &Target) -> Result<Self, Error> {
        Ok(Self {
            source: target.source,
            authorization_server: target.authorization_server.trim_end_matches('/').to_owned(),
            resource_server: target.resource_server.trim_end_matches('/').to_owned(),
            webapp: target.webapp.trim_end_matches('/').to_owned(),
            legit_concurrency: target.legit_concurrency.max(1),
            legit_pause: Duration::from_millis(target.legit_pause_ms),
            legit: http::client(target.legit_source, REQUEST_TIMEOUT)?,
            rss: Rss::start(target.pid)?,
        })
    }

    /// A client of the attacker's address, new for each scenario: no connection of an earlier
    /// one is left to count against a per-address limit.
    pub fn attacker(&self) -> Result<reqwest::Client, Error> {
        http::client(self.source, REQUEST_TIMEOUT)
    }

    /// Runs `scenario` under the legitimate loop; the loop's figures and bound join the report,
    /// and a scenario that could not run ends it as such.
    pub async fn run<S: Scenario>(&self, scenario: &S) -> Report {
        let mut report = Report::new(S::NAME);
        if let Err(err) = self.rss.alive() {
            return report.broken(&err);
        }
        let legit = Legit::start(
            &self.legit,
            &self.webapp,
            self.legit_concurrency,
            self.legit_pause,
        );
        let outcome = scenario.attack(self, &mut report).await;
        legit.stop_into(&mut report).await;
        let outcome = outcome.and_then(|()| self.rss.alive());
        match outcome {
            Ok(()) => report,
            Err(err) => report.broken(&err),
        }
    }
}
