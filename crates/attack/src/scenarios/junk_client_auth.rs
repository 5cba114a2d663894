//! (b) The attacker's address is first locked out of the real client (wrong secrets until the
//! throttle's wait is long enough for the whole run), then failed client authentications are
//! sent, each with a distinct random client id as long as the body limit allows: from many source
//! addresses (`--junk-sources`), so that each reaches the secret check and is recorded, or from
//! the attacker's address alone. Every junk request must be answered by client authentication
//! (401 `invalid_client`, or the throttle's 429 `temporarily_unavailable` once junk from one
//! address waits too); the real secret from the attacker's address must stay refused by the
//! lock, checked every so many junk requests and at the end; the server's RSS must not grow by
//! more than the bound.
//!
//! Before the lock, a control run sends the same traffic (sources, connections, the same forms
//! with their 16 KB ids) with a Basic `Authorization` header as well, which the server refuses
//! (400 `invalid_request`: one authentication method only) after parsing the form but before the
//! throttle. What the allocator keeps of such traffic (a hundred thousand short connections each
//! parsing a 16 KB form leave its arenas a few MiB larger) is then in RSS before the junk starts,
//! so the junk run's growth is what failed authentications add: the state the throttle keeps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use test_client::{Pkce, CLIENT_ID, CLIENT_SECRET};

use super::{Ctx, Scenario};
use crate::cli::JunkArgs;
use crate::error::{Context, Error};
use crate::http::{raw_post_form, socket_addr, Answer};
use crate::oauth;
use crate::report::{mib, Report, Tally};
use test_client::describe;

/// Wrong secrets sent at most while building the lock (its wait doubles per failure).
const MAX_LOCK_ATTEMPTS: u32 = 30;
const WRONG_SECRET: &str = "not-the-secret";
/// A junk request on a connection of its own must be answered whole within this.
const JUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// The characters of a junk id: base64url's, none of which the form encoding escapes.
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Scenario for JunkArgs {
    const NAME: &str = "junk-client-auth";

    async fn attack(&self, ctx: &Ctx, report: &mut Report) -> Result<(), Error> {
        let client = ctx.attacker()?;
        let base = &ctx.authorization_server;
        let junk = Junk {
            client: &client,
            base,
            target: socket_addr(base)?,
            args: self,
        };
        let control_before = ctx.rss.now_kib()?;
        let control = send_junk(&junk, 0, self.junk_count, Traffic::Control).await;
        // The control warms the allocator; it judges nothing but that the server refused it
        // before the throttle (a connection the loaded machine could not make is only counted).
        report.figure("control_refused", control.get("refused_unread"), "");
        report.figure("control_unconnected", control.get("transport"), "");
        report.mib(
            "control_growth",
            ctx.rss.now_kib()?.saturating_sub(control_before),
        );
        report.bound(control.get("other") == 0, || {
            format!(
                "the control traffic was answered other than 400 invalid_request: {}",
                control.examples()
            )
        });

        let lock = lock_out(&client, base, self.min_lock_seconds).await?;
        report.figure("lock_failures", lock.failures, "");
        report.figure("lock_retry_after", lock.retry_after, "s");
        report.figure("lock_setup", lock.setup.as_secs(), "s");

        let before = ctx.rss.now_kib()?;
        let started = Instant::now();
        let run = junk_under_lock(&junk, &lock).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let peak = ctx.rss.peak_since(started).unwrap_or(before);
        let peak = peak.max(ctx.rss.now_kib()?);
        let tally = &run.tally;
        report.figure("junk_sent", run.sent, "");
        report.figure("junk_sources", self.junk_sources.max(1), "");
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

/// Where and how the junk goes.
struct Junk<'a> {
    /// The attacker's client: the single-source junk and the probes.
    client: &'a reqwest::Client,
    base: &'a str,
    /// The authorization server's address, for the junk of many sources.
    target: SocketAddr,
    args: &'a JunkArgs,
}

/// The junk requests in chunks, the real secret probed after each while the lock should hold.
async fn junk_under_lock(junk: &Junk<'_>, lock: &Lock) -> Result<JunkRun, Error> {
    let (client, base, args) = (junk.client, junk.base, junk.args);
    let mut run = JunkRun {
        tally: Tally::default(),
        sent: 0,
        probes_refused: 0,
        lock_broken: None,
    };
    while run.sent < args.junk_count && run.lock_broken.is_none() {
        let chunk = args.probe_every.max(1).min(args.junk_count - run.sent);
        run.tally
            .merge(send_junk(junk, run.sent, chunk, Traffic::Junk).await);
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
        let form = oauth::token_form("junk", &Pkce::random().verifier, CLIENT_ID, WRONG_SECRET);
        let answer = send(client, base, (Traffic::Junk.extra_headers(), &form))
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
    let form = oauth::token_form("junk", &Pkce::random().verifier, CLIENT_ID, CLIENT_SECRET);
    send(client, base, (Traffic::Junk.extra_headers(), &form))
        .await
        .context("the real secret's probe")
}

/// A token request of `form`, with `extra_headers` (whole lines), on the attacker's client.
async fn send(
    client: &reqwest::Client,
    base: &str,
    (extra_headers, form): (&str, &str),
) -> Result<Answer, String> {
    let mut request = client
        .post(format!("{base}/token"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form.to_owned());
    for (name, value) in extra_headers
        .lines()
        .filter_map(|line| line.split_once(": "))
    {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|err| describe(&err))?;
    Answer::read(response).await.map_err(|err| describe(&err))
}

/// What the junk requests are.
#[derive(Debug, Clone, Copy)]
enum Traffic {
    /// Failed client authentications.
    Junk,
    /// The same forms with a Basic header too: refused before the throttle.
    Control,
}

impl Traffic {
    /// The first of its source addresses: the two runs use different ones, so that no
    /// connection of the junk meets one of the control's in the server's TIME_WAIT.
    fn first_source(self) -> Ipv4Addr {
        match self {
            Traffic::Junk => Ipv4Addr::new(127, 1, 0, 0),
            Traffic::Control => Ipv4Addr::new(127, 2, 0, 0),
        }
    }

    /// Header lines beside the form's.
    fn extra_headers(self) -> &'static str {
        match self {
            Traffic::Junk => "",
            // Basic x:y
            Traffic::Control => "Authorization: Basic eDp5\r\n",
        }
    }

    /// The tally key of an expected answer, `None` for any other.
    fn expected(self, answer: &Answer) -> Option<&'static str> {
        match self {
            Traffic::Junk if answer.is(401, "invalid_client") => Some("invalid_client"),
            Traffic::Junk if answer.is(429, "temporarily_unavailable") => Some("throttled"),
            Traffic::Control if answer.is(400, "invalid_request") => Some("refused_unread"),
            _ => None,
        }
    }
}

/// Requests `first..first + count` from `junk_concurrency` workers: request `n` comes from
/// source `n / per_source` (see [`source_of`]), or all from the attacker's client.
async fn send_junk(junk: &Junk<'_>, first: u64, count: u64, traffic: Traffic) -> Tally {
    let args = junk.args;
    let sources = u64::from(args.junk_sources.max(1));
    let per_source = args.junk_count.div_ceil(sources).max(1);
    let next = Arc::new(AtomicU64::new(first));
    let end = first + count;
    let workers: Vec<_> = (0..args.junk_concurrency.max(1))
        .map(|_| {
            let (client, base, next) = (junk.client.clone(), junk.base.to_owned(), next.clone());
            let (target, id_bytes) = (junk.target, args.junk_id_bytes);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let verifier = Pkce::random().verifier;
                while let Some(n) = take_next(&next, end) {
                    let form =
                        oauth::token_form("junk", &verifier, &junk_id(id_bytes), WRONG_SECRET);
                    let request = (traffic.extra_headers(), form.as_str());
                    let answer = if sources == 1 {
                        send(&client, &base, request).await
                    } else {
                        let source = source_of(traffic.first_source(), n / per_source);
                        raw_post_form(target, source, "/token", request, JUNK_TIMEOUT).await
                    };
                    match answer {
                        Ok(answer) => match traffic.expected(&answer) {
                            Some(kind) => tally.count(kind),
                            None => tally.note("other", || answer.to_string()),
                        },
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

/// The `index`th source from `first` on (loopback: 127.0.0.0/8 is all ours).
fn source_of(first: Ipv4Addr, index: u64) -> IpAddr {
    let first = u32::from(first);
    let offset = u32::try_from(index).unwrap_or(u32::MAX);
    IpAddr::V4(Ipv4Addr::from(first.saturating_add(offset)))
}

/// The next request number below `end`, if any.
fn take_next(next: &AtomicU64, end: u64) -> Option<u64> {
    next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        (n < end).then_some(n + 1)
    })
    .ok()
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
    fn junk_sources_are_consecutive_loopback_addresses() {
        let first = Traffic::Junk.first_source();
        assert_eq!(source_of(first, 0).to_string(), "127.1.0.0");
        assert_eq!(source_of(first, 19_999).to_string(), "127.1.78.31");
        let next = AtomicU64::new(3);
        assert_eq!(take_next(&next, 5), Some(3));
        assert_eq!(take_next(&next, 5), Some(4));
        assert_eq!(take_next(&next, 5), None);
    }

    #[test]
    fn junk_ids_are_distinct_and_need_no_escaping() {
        let (one, two) = (junk_id(16_000), junk_id(16_000));
        assert_eq!(one.len(), 16_000);
        assert_ne!(one, two);
        let form = oauth::token_form("junk", "v", &one, WRONG_SECRET);
        assert!(form.contains(&one));
    }
}
