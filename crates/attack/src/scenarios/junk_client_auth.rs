//! (b) The attacker's address is first locked out of the real client (wrong secrets until the
//! throttle's wait is long enough for the whole run), then sends failed client authentications,
//! each with a distinct random client id as long as the body limit allows. Every junk request
//! must be answered by client authentication (401 `invalid_client`, or the throttle's 429
//! `temporarily_unavailable` once junk from that address waits too); the real secret from that
//! address must stay refused by the lock, checked every so many junk requests and at the end; the
//! server's RSS must not grow by more than the bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

use super::{Ctx, Scenario};
use crate::cli::JunkArgs;
use crate::error::{Context, Error};
use crate::http::{describe, Answer};
use crate::oauth::{self, Pkce, CLIENT_ID, CLIENT_SECRET};
use crate::report::{mib, Report, Tally};

/// Wrong secrets sent at most while building the lock (its wait doubles per failure).
const MAX_LOCK_ATTEMPTS: u32 = 30;
const WRONG_SECRET: &str = "not-the-secret";
/// The characters of a junk id: base64url's, none of which the form encoding escapes.
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Scenario for JunkArgs {
    const NAME: &str = "junk-client-auth";

    async fn attack(&self, ctx: &Ctx, report: &mut Report) -> Result<(), Error> {
        let client = ctx.attacker()?;
        let base = &ctx.authorization_server;
        let lock = lock_out(&client, base, self.min_lock_seconds).await?;
        report.figure("lock_failures", lock.failures, "");
        report.figure("lock_retry_after", lock.retry_after, "s");
        report.figure("lock_setup", lock.setup.as_secs(), "s");

        let before = ctx.rss.now_kib()?;
        let started = Instant::now();
        let run = junk_under_lock(&client, base, &lock, self).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let peak = ctx.rss.peak_since(started).unwrap_or(before);
        let peak = peak.max(ctx.rss.now_kib()?);
        let tally = &run.tally;
        report.figure("junk_sent", run.sent, "");
        report.figure("invalid_client", tally.get("invalid_client"), "");
        report.figure("throttled", tally.get("throttled"), "");
        report.figure("other_answers", tally.get("other"), "");
        report.figure("transport_errors", tally.get("transport"), "");
        report.figure("junk_per_s", (run.sent as f64 / elapsed).round(), "");
        report.figure("probes_refused", run.probes_refused, "");
        report.mib("rss_before", before);
        report.mib("rss_peak", peak);
        let growth = peak.saturating_sub(before);
        report.mib("rss_growth", growth);

        report.bound(tally.get("invalid_client") > 0, || {
            "no junk request reached client authentication (no 401 invalid_client)".into()
        });
        let unanswered = tally.get("other") + tally.get("transport");
        report.bound(unanswered == 0, || {
            format!(
                "{unanswered} junk requests were not answered by client authentication: {}",
                tally.examples()
            )
        });
        if let Some(why) = run.lock_broken {
            report.fail(why);
        }
        report.bound(growth as f64 <= self.max_rss_growth_mib * 1024.0, || {
            format!(
                "RSS grew by {} MiB during the junk run (bound {} MiB)",
                mib(growth),
                self.max_rss_growth_mib
            )
        });
        Ok(())
    }
}

/// What the junk requests met, and whether the lock held throughout.
struct JunkRun {
    tally: Tally,
    sent: u64,
    probes_refused: u64,
    /// Why the lock cannot be said to have held: lifted, ran out, or a strange probe answer.
    lock_broken: Option<String>,
}

/// The junk requests in chunks, the real secret probed after each while the lock should hold.
async fn junk_under_lock(
    client: &reqwest::Client,
    base: &str,
    lock: &Lock,
    args: &JunkArgs,
) -> Result<JunkRun, Error> {
    let mut run = JunkRun {
        tally: Tally::default(),
        sent: 0,
        probes_refused: 0,
        lock_broken: None,
    };
    while run.sent < args.junk_count && run.lock_broken.is_none() {
        let chunk = args.probe_every.max(1).min(args.junk_count - run.sent);
        run.tally.merge(send_junk(client, base, chunk, args).await);
        run.sent += chunk;
        let sent = run.sent;
        if Instant::now() >= lock.ends {
            run.lock_broken = Some(format!(
                "the lock ({} s by its Retry-After) ran out after {sent} of {} junk requests: the \
                 run cannot show that junk does not lift it; raise --min-lock-seconds (the \
                 throttle's wait doubles per failure up to its cap) or lower --junk-count",
                lock.retry_after, args.junk_count
            ));
            break;
        }
        let answer = probe(client, base).await?;
        if answer.is(429, "temporarily_unavailable") {
            run.probes_refused += 1;
        } else if answer.is(400, "invalid_grant") {
            run.lock_broken = Some(format!(
                "the lock was lifted after {sent} junk requests: the real secret from the \
                 attacker's address was accepted ({answer}, the junk code then refused)"
            ));
        } else {
            run.lock_broken = Some(format!("the real secret's probe was answered {answer}"));
        }
    }
    Ok(run)
}

/// The attacker's lock on the real client id.
struct Lock {
    /// The 401s it took.
    failures: u32,
    /// The Retry-After that said it was long enough.
    retry_after: u64,
    setup: Duration,
    /// The earliest the lock may end: Retry-After is rounded up to a whole second.
    ends: Instant,
}

/// Wrong secrets for the real client id, each after the previous wait, until a 429 says the wait
/// is at least `min_seconds`.
async fn lock_out(client: &reqwest::Client, base: &str, min_seconds: u64) -> Result<Lock, Error> {
    let started = Instant::now();
    let (mut failures, mut longest) = (0, 0);
    for _ in 0..MAX_LOCK_ATTEMPTS {
        let form = oauth::token_form("junk", &Pkce::new().verifier, CLIENT_ID, WRONG_SECRET);
        let answer = send(client, base, form)
            .await
            .context("a wrong secret for the real client")?;
        if answer.is(401, "invalid_client") {
            failures += 1;
            continue;
        }
        if !answer.is(429, "temporarily_unavailable") {
            return Err(format!("a wrong secret for the real client was answered {answer}").into());
        }
        let wait = answer
            .retry_after
            .ok_or("the throttle's 429 has no Retry-After")?;
        if wait >= min_seconds {
            return Ok(Lock {
                failures,
                retry_after: wait,
                setup: started.elapsed(),
                ends: Instant::now() + Duration::from_secs(wait.saturating_sub(1)),
            });
        }
        if wait <= longest {
            return Err(format!(
                "the throttle's wait stopped growing at {wait} s, short of --min-lock-seconds \
                 {min_seconds}"
            )
            .into());
        }
        longest = wait;
        tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    }
    Err(format!(
        "no lock of {min_seconds} s after {MAX_LOCK_ATTEMPTS} wrong secrets ({failures} answered \
         401)"
    )
    .into())
}

/// The real secret from the attacker's address: 429 while the lock holds; once authenticated,
/// the junk code makes it 400 `invalid_grant`.
async fn probe(client: &reqwest::Client, base: &str) -> Result<Answer, Error> {
    let form = oauth::token_form("junk", &Pkce::new().verifier, CLIENT_ID, CLIENT_SECRET);
    send(client, base, form)
        .await
        .context("the real secret's probe")
}

async fn send(client: &reqwest::Client, base: &str, form: String) -> Result<Answer, String> {
    let response = oauth::post_token(client, base, form)
        .await
        .map_err(|err| describe(&err))?;
    Answer::read(response).await.map_err(|err| describe(&err))
}

/// `count` junk requests from `junk_concurrency` connections.
async fn send_junk(client: &reqwest::Client, base: &str, count: u64, args: &JunkArgs) -> Tally {
    let remaining = Arc::new(AtomicU64::new(count));
    let workers: Vec<_> = (0..args.junk_concurrency.max(1))
        .map(|_| {
            let (client, base, remaining) = (client.clone(), base.to_owned(), remaining.clone());
            let id_bytes = args.junk_id_bytes;
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let verifier = Pkce::new().verifier;
                while take_one(&remaining) {
                    let form =
                        oauth::token_form("junk", &verifier, &junk_id(id_bytes), WRONG_SECRET);
                    match send(&client, &base, form).await {
                        Ok(answer) if answer.is(401, "invalid_client") => {
                            tally.count("invalid_client")
                        }
                        Ok(answer) if answer.is(429, "temporarily_unavailable") => {
                            tally.count("throttled")
                        }
                        Ok(answer) => tally.note("other", || answer.to_string()),
                        Err(why) => tally.note("transport", || why),
                    }
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(worker_tally) => tally.merge(worker_tally),
            Err(err) => tally.note("transport", || format!("a junk worker died: {err}")),
        }
    }
    tally
}

fn take_one(remaining: &AtomicU64) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

/// A random client id of `len` characters.
fn junk_id(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|byte| char::from(ID_ALPHABET[usize::from(byte & 63)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_ids_are_distinct_and_need_no_escaping() {
        let (one, two) = (junk_id(16_000), junk_id(16_000));
        assert_eq!(one.len(), 16_000);
        assert_ne!(one, two);
        let form = oauth::token_form("junk", "v", &one, WRONG_SECRET);
        assert!(form.contains(&one));
    }
}
