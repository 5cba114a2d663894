//! (a) Valid authorization requests at full speed from one address, never redeemed: every answer
//! is a code or `temporarily_unavailable` (the rate limit or the cap on live codes), and the
//! server's RSS stays under the bound during the flood, 2 s after it and once the codes expired.

use std::time::{Duration, Instant};

use test_client::{Pkce, Redirect};

use super::{Ctx, Scenario};
use crate::cli::FloodArgs;
use crate::error::Error;
use crate::oauth;
use crate::report::{mib, Report, Tally};
use test_client::describe;

/// The first figure after the flood, and the margin past the code lifetime for the last one.
const SETTLE: Duration = Duration::from_secs(2);

impl Scenario for FloodArgs {
    const NAME: &str = "authorize-flood";

    async fn attack(&self, ctx: &Ctx, report: &mut Report) -> Result<(), Error> {
        let before = ctx.rss.now_kib()?;
        let started = Instant::now();
        let tally = flood(ctx, started + Duration::from_secs(self.flood_seconds), self).await?;
        let flood_ended = Instant::now();
        let peak_during = ctx.rss.peak_since(started).unwrap_or(before);
        tokio::time::sleep(SETTLE).await;
        let after = ctx.rss.now_kib()?;

        let seconds = flood_ended.duration_since(started).as_secs_f64();
        report.figure("requests", tally.total(), "");
        for (name, outcome) in [
            ("codes", "code"),
            ("temporarily_unavailable", "temporarily_unavailable"),
            ("other_answers", "other"),
            ("transport_errors", "transport"),
        ] {
            report.figure(name, tally.get(outcome), "");
        }
        report.figure(
            "requests_per_s",
            (tally.total() as f64 / seconds).round(),
            "",
        );
        report.mib("rss_before", before);
        report.mib("rss_peak_during", peak_during);
        report.mib("rss_2s_after", after);

        report.bound(tally.get("code") > 0, || {
            format!(
                "no code was issued: the requests were not valid ({})",
                tally.examples()
            )
        });
        report.bound(tally.get("other") == 0, || {
            let other = tally.get("other");
            format!(
                "{other} answers were neither a code nor temporarily_unavailable: {}",
                tally.examples()
            )
        });
        let answered = tally.get("code") + tally.get("temporarily_unavailable");
        report.bound(tally.get("transport") <= answered, || {
            let errors = tally.get("transport");
            format!(
                "most requests got no answer ({errors} transport errors): {}",
                tally.examples()
            )
        });
        let max_kib = (self.max_rss_mib * 1024.0) as u64;
        let mut rss_bound = |kib: u64, when: &str| {
            let bound = self.max_rss_mib;
            report.bound(kib <= max_kib, || {
                format!("RSS was {} MiB {when} (bound {bound} MiB)", mib(kib))
            });
        };
        rss_bound(peak_during, "at its peak during the flood");
        rss_bound(after, "2 s after the flood");
        if self.no_expiry_wait {
            return Ok(());
        }
        let expired = flood_ended + Duration::from_secs(self.code_ttl_seconds) + SETTLE;
        tokio::time::sleep_until(expired.into()).await;
        let after_expiry = ctx.rss.now_kib()?;
        rss_bound(after_expiry, "once the flood's codes had expired");
        report.mib("rss_after_code_ttl", after_expiry);
        Ok(())
    }
}

/// The flood's connections, each sending until `deadline`; what they were answered.
async fn flood(ctx: &Ctx, deadline: Instant, args: &FloodArgs) -> Result<Tally, Error> {
    let client = ctx.attacker()?;
    let workers: Vec<_> = (0..args.flood_connections.max(1))
        .map(|worker| {
            let (client, base) = (client.clone(), ctx.authorization_server.clone());
            tokio::spawn(async move { worker_loop(&client, &base, worker, deadline).await })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        let worker = worker
            .await
            .map_err(|err| format!("a flood worker died: {err}"))?;
        tally.merge(worker);
    }
    Ok(tally)
}

/// One connection's requests, back to back until `deadline`.
async fn worker_loop(
    client: &reqwest::Client,
    base: &str,
    worker: usize,
    deadline: Instant,
) -> Tally {
    let pkce = Pkce::random();
    let mut tally = Tally::default();
    let mut sent = 0u64;
    while Instant::now() < deadline {
        sent += 1;
        let state = format!("{worker}-{sent}");
        let url = oauth::authorize_url(base, &pkce.challenge, &state);
        let response = match client.get(url).send().await {
            Ok(response) => response,
            Err(err) => {
                tally.note("transport", || describe(&err));
                continue;
            }
        };
        let outcome = oauth::redirect(&response, &state);
        // Read to the end, so that the connection is kept for the next request.
        if let Err(err) = response.bytes().await {
            tally.note("transport", || describe(&err));
            continue;
        }
        match outcome {
            Ok(Redirect::Code(_)) => tally.count("code"),
            Ok(Redirect::Error(error)) if error == "temporarily_unavailable" => {
                tally.count("temporarily_unavailable")
            }
            Ok(Redirect::Error(error)) => tally.note("other", || format!("error={error}")),
            Err(why) => tally.note("other", || why),
        }
    }
    tally
}
