//! (c) Many connections from one address to the authorization server, each sending a token
//! request's head at once and then its body one byte at a time. The server must close every one
//! (end of stream or reset) within its whole-request deadline plus a margin; a connection refused
//! at once (a per-address cap) counts as closed, and both numbers are reported.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Ctx, Scenario};
use crate::cli::SlowArgs;
use crate::error::{Context, Error};
use crate::http::{connect, socket_addr, status_of, Answer};
use crate::report::{tenths, Report, Tally};

/// The declared body: under the body limit, and far more than a connection can trickle in time.
const BODY_BYTES: u64 = 1_000;

/// What became of one slow connection.
enum Fate {
    /// Not connected, or closed before its first body byte.
    RefusedAtOnce(String),
    /// Closed by the server after this long, having sent that status line first, if any.
    Cut {
        after: Duration,
        answer: Option<u16>,
    },
    /// Still open at the bound: the tool closed it.
    StillOpen,
}

impl Scenario for SlowArgs {
    const NAME: &str = "slow-connections";

    async fn attack(&self, ctx: &Ctx, report: &mut Report) -> Result<(), Error> {
        let target = socket_addr(&ctx.authorization_server)?;
        reachable(ctx).await?;
        let bound = Duration::from_secs(self.slow_deadline_seconds);
        let interval = Duration::from_millis(self.slow_byte_interval_ms.max(1));
        let host = ctx
            .authorization_server
            .trim_start_matches("http://")
            .to_owned();
        let connections: Vec<_> = (0..self.slow_connections)
            .map(|_| {
                let (source, host) = (ctx.source, host.clone());
                tokio::spawn(async move { trickle(target, source, &host, interval, bound).await })
            })
            .collect();
        let mut fates = Tally::default();
        let (mut slowest_cut, mut answered) = (Duration::ZERO, Tally::default());
        for connection in connections {
            match connection.await {
                Ok(Fate::RefusedAtOnce(why)) => fates.note("refused_at_once", || why),
                Ok(Fate::Cut { after, answer }) => {
                    fates.count("cut");
                    slowest_cut = slowest_cut.max(after);
                    if let Some(status) = answer {
                        answered.note("answered", || status.to_string());
                    }
                }
                Ok(Fate::StillOpen) => fates.count("still_open"),
                Err(err) => return Err(format!("a slow connection's task died: {err}").into()),
            }
        }
        report.figure("connections", fates.total(), "");
        report.figure("cut_by_server", fates.get("cut"), "");
        report.figure("refused_at_once", fates.get("refused_at_once"), "");
        report.figure("still_open_at_bound", fates.get("still_open"), "");
        if fates.get("cut") > 0 {
            report.figure("slowest_cut", tenths(slowest_cut), "s");
        }
        report.figure("cut_with_an_answer", answered.get("answered"), "");
        if answered.get("answered") > 0 {
            report.figure("answer_statuses", answered.examples(), "");
        }
        if fates.get("refused_at_once") > 0 {
            report.figure("refusals", fates.examples(), "");
        }

        report.bound(fates.get("still_open") == 0, || {
            format!(
                "{} of {} slow connections were still open {} s after they started (the server \
             never cut them)",
                fates.get("still_open"),
                fates.total(),
                self.slow_deadline_seconds
            )
        });
        report.bound(fates.get("cut") + fates.get("still_open") > 0, || {
            "the server refused every slow connection at once: its deadline was not exercised"
                .into()
        });
        Ok(())
    }
}

/// An ordinary request from the attacker's address is answered: a refusal of every slow
/// connection then means a cap, not a server that is not there.
async fn reachable(ctx: &Ctx) -> Result<(), Error> {
    let client = ctx.attacker()?;
    let response = client
        .get(format!("{}/healthz", ctx.authorization_server))
        .send()
        .await
        .context(format!("GET /healthz from {}", ctx.source))?;
    let answer = Answer::read(response).await.context("GET /healthz")?;
    if answer.status != 200 {
        return Err(format!("GET /healthz from {} answered {answer}", ctx.source).into());
    }
    Ok(())
}

/// One connection: the head at once, then a body byte every `interval` until the server closes
/// the connection or `bound` has passed since the start.
async fn trickle(
    target: SocketAddr,
    source: IpAddr,
    host: &str,
    interval: Duration,
    bound: Duration,
) -> Fate {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + bound);
    let socket = match connect(target, source).await {
        Ok(socket) => socket,
        Err(why) => return Fate::RefusedAtOnce(why),
    };
    let (mut reader, mut writer) = socket.into_split();
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {BODY_BYTES}\r\n\r\n"
    );
    if let Err(err) = writer.write_all(head.as_bytes()).await {
        return Fate::RefusedAtOnce(format!("the head could not be sent: {err}"));
    }
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let (mut sent, mut buffer, mut received) = (0u64, [0u8; 512], Vec::new());
    let closed = |sent: u64, received: &[u8]| match sent {
        0 => Fate::RefusedAtOnce("closed before the body".into()),
        _ => Fate::Cut {
            after: started.elapsed(),
            answer: status_of(received),
        },
    };
    loop {
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return closed(sent, &received),
                Ok(n) => {
                    // The status line is all that is kept of an answer.
                    let room = 64usize.saturating_sub(received.len());
                    received.extend_from_slice(&buffer[..n.min(room)]);
                }
            },
            _ = ticks.tick(), if sent < BODY_BYTES => {
                if writer.write_all(b"a").await.is_err() {
                    return closed(sent, &received);
                }
                sent += 1;
            }
            () = tokio::time::sleep_until(deadline) => return Fate::StillOpen,
        }
    }
}
