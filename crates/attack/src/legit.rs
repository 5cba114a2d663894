//! The legitimate user: full calls through the webapp from another address, at a user's pace for
//! the whole of an attack. Every answer must be 200 with the endpoint's JSON for the user.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::oauth::USER;
use crate::report::{Report, Tally};
use test_client::describe;

const ENDPOINTS: [&str; 2] = ["epoch_time", "current_time"];

pub struct Legit {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<(Tally, Duration)>>,
}

impl Legit {
    pub fn start(
        client: &reqwest::Client,
        webapp: &str,
        concurrency: usize,
        pause: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..concurrency)
            .map(|worker| {
                let (client, webapp, stop) = (client.clone(), webapp.to_owned(), stop.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut slowest = Duration::ZERO;
                    // Workers start on different endpoints so that both are always in use.
                    for endpoint in ENDPOINTS.iter().cycle().skip(worker) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let started = Instant::now();
                        match call(&client, &webapp, endpoint).await {
                            Ok(()) => tally.count("ok"),
                            Err(why) => tally.note("failed", || format!("/{endpoint}: {why}")),
                        }
                        slowest = slowest.max(started.elapsed());
                        tokio::time::sleep(pause).await;
                    }
                    (tally, slowest)
                })
            })
            .collect();
        Self { stop, workers }
    }

    /// Stops the loop (the calls in flight finish) and adds its figures and bound to `report`:
    /// at least one call, and every call succeeded.
    pub async fn stop_into(self, report: &mut Report) {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        let mut slowest = Duration::ZERO;
        for worker in self.workers {
            match worker.await {
                Ok((worker_tally, worker_slowest)) => {
                    tally.merge(worker_tally);
                    slowest = slowest.max(worker_slowest);
                }
                Err(err) => tally.note("failed", || format!("a worker died: {err}")),
            }
        }
        report.figure("legit_calls", tally.total(), "");
        report.figure("legit_failed", tally.get("failed"), "");
        report.figure("legit_slowest", slowest.as_millis() as u64, "ms");
        report.bound(tally.get("ok") > 0, || {
            "the legitimate loop made no successful call".into()
        });
        report.bound(tally.get("failed") == 0, || {
            format!(
                "{} of {} legitimate calls failed: {}",
                tally.get("failed"),
                tally.total(),
                tally.examples()
            )
        });
    }
}

async fn call(client: &reqwest::Client, webapp: &str, endpoint: &str) -> Result<(), String> {
    let url = format!("{webapp}/{endpoint}?user={USER}");
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|err| describe(&err))?;
    let status = response.status();
    let body = response.text().await.map_err(|err| describe(&err))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{status}: {body}"));
    }
    check_answer(endpoint, &body).map_err(|why| format!("{why}: {body}"))
}

/// Exactly `{"<endpoint>": <value>, "user": USER}`, the value an integer for epoch_time and a
/// string for current_time.
fn check_answer(endpoint: &str, body: &str) -> Result<(), &'static str> {
    let json: Value = serde_json::from_str(body).map_err(|_| "not JSON")?;
    let object = json.as_object().ok_or("not a JSON object")?;
    if object.len() != 2 || object.get("user").and_then(Value::as_str) != Some(USER) {
        return Err("not the answer for the user");
    }
    let value = object.get(endpoint).ok_or("not the endpoint's answer")?;
    let typed = match endpoint {
        "epoch_time" => value.is_u64(),
        _ => value.is_string(),
    };
    if typed {
        Ok(())
    } else {
        Err("the time has the wrong type")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_endpoints_answer_for_the_user_passes() {
        assert!(check_answer("epoch_time", r#"{"epoch_time":1700000000,"user":"alice"}"#).is_ok());
        assert!(check_answer(
            "current_time",
            r#"{"current_time":"2024-01-01T00:00:00Z","user":"alice"}"#
        )
        .is_ok());
        for (endpoint, body) in [
            (
                "epoch_time",
                r#"{"epoch_time":"1700000000","user":"alice"}"#,
            ),
            ("epoch_time", r#"{"epoch_time":1700000000,"user":"bob"}"#),
            ("epoch_time", r#"{"current_time":"x","user":"alice"}"#),
            ("epoch_time", r#"{"epoch_time":1,"user":"alice","x":1}"#),
            ("current_time", r#"{"error":"temporarily_unavailable"}"#),
            ("current_time", "not json"),
        ] {
            assert!(check_answer(endpoint, body).is_err(), "{body}");
        }
    }
}
