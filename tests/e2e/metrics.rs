//! `GET /metrics` on each service: the Prometheus text format, each service's own registry (the
//! three run in this one process, as in the all-in-one binary), counters moving as flows run.

use std::collections::BTreeMap;

use crate::system::System;

/// The samples of a Prometheus text exposition (format 0.0.4), checked line by line: `# HELP` and
/// `# TYPE` comments, and `name{label="value",...} number` samples whose family was typed first.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let is_name = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("bad comment {line:?}"));
            assert!(is_name(name), "{line:?}");
            match kind {
                Some("HELP") => assert!(rest.is_some(), "{line:?}"),
                Some("TYPE") => {
                    let kind = rest.unwrap();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line:?}"
                    );
                    types.insert(name.to_owned(), kind.to_owned());
                }
                _ => panic!("bad comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            value => value
                .parse()
                .unwrap_or_else(|_| panic!("bad value {line:?}")),
        };
        let name = match series.split_once('{') {
            None => series,
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap();
                for pair in labels.split(',').filter(|pair| !pair.is_empty()) {
                    let (label, quoted) = pair.split_once('=').unwrap();
                    assert!(is_name(label), "{line:?}");
                    assert!(
                        quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                        "{line:?}"
                    );
                }
                name
            }
        };
        assert!(is_name(name), "{line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "{name} has no # TYPE");
        if types[family] == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} must end in _total"
            );
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

async fn scrape(system: &System, base: &str) -> BTreeMap<String, f64> {
    let response = system.get(format!("{base}/metrics")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    parse(&response.text().await.unwrap())
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn each_service_exposes_its_own_metrics_and_they_move_with_a_flow() {
    let system = System::start().await;
    let webapp_before = scrape(&system, &system.webapp).await;
    let as_before = scrape(&system, &system.authorization_server).await;
    let rs_before = scrape(&system, &system.resource_server).await;
    assert_eq!(
        value(
            &as_before,
            r#"oauth_access_tokens_issued_total{scope="epoch_time"}"#
        ),
        0.0
    );
    // One registry per service, although the three share this process.
    assert!(webapp_before.keys().all(|k| !k.starts_with("oauth_")));
    assert!(as_before
        .keys()
        .all(|k| !k.starts_with("upstream_") && !k.starts_with("token_validations")));
    assert!(rs_before
        .keys()
        .all(|k| !k.starts_with("oauth_") && !k.starts_with("upstream_")));

    for _ in 0..2 {
        let response = system
            .get(format!("{}/epoch_time?user=alice", system.webapp))
            .await;
        assert_eq!(response.status(), 200);
    }
    // A replayed code and a token presented for another user.
    let token = system.token_for("epoch_time", "bob").await;
    let refused = system.call_resource("/epoch_time", "mallory", &token).await;
    assert_eq!(refused.status(), 403);
    let refused = system
        .call_resource("/epoch_time", "bob", "not.a.jwt")
        .await;
    assert_eq!(refused.status(), 401);

    let webapp = scrape(&system, &system.webapp).await;
    let authorization_server = scrape(&system, &system.authorization_server).await;
    let resource_server = scrape(&system, &system.resource_server).await;
    let moved = |after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>, series: &str| {
        value(after, series) - value(before, series)
    };

    let requests = r#"http_requests_total{method="GET",route="/epoch_time",status="200"}"#;
    assert_eq!(moved(&webapp, &webapp_before, requests), 2.0);
    assert_eq!(
        moved(
            &webapp,
            &webapp_before,
            r#"http_request_duration_seconds_count{method="GET",route="/epoch_time"}"#
        ),
        2.0
    );
    for step in ["authorize", "token", "resource"] {
        let series = format!(r#"upstream_request_duration_seconds_count{{step="{step}"}}"#);
        assert_eq!(moved(&webapp, &webapp_before, &series), 2.0, "{series}");
    }

    assert_eq!(
        moved(
            &authorization_server,
            &as_before,
            r#"oauth_access_tokens_issued_total{scope="epoch_time"}"#
        ),
        3.0
    );
    assert_eq!(
        moved(
            &authorization_server,
            &as_before,
            r#"oauth_authorization_code_redemptions_total{outcome="redeemed"}"#
        ),
        3.0
    );
    assert_eq!(
        moved(
            &authorization_server,
            &as_before,
            r#"http_requests_total{method="POST",route="/token",status="200"}"#
        ),
        3.0
    );

    assert_eq!(
        moved(
            &resource_server,
            &rs_before,
            "token_validations_accepted_total"
        ),
        2.0
    );
    assert_eq!(
        moved(
            &resource_server,
            &rs_before,
            r#"token_validations_refused_total{reason="insufficient_scope"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(
            &resource_server,
            &rs_before,
            r#"token_validations_refused_total{reason="invalid_token"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn replayed_codes_and_unreachable_upstreams_are_counted() {
    let system = System::start_without_resource_server().await;
    let response = system
        .get(format!("{}/epoch_time?user=alice", system.webapp))
        .await;
    assert_eq!(response.status(), 503);
    let webapp = scrape(&system, &system.webapp).await;
    assert_eq!(
        value(
            &webapp,
            r#"upstream_errors_total{reason="unreachable",step="resource"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &webapp,
            r#"http_requests_total{method="GET",route="/epoch_time",status="503"}"#
        ),
        1.0
    );

    // The webapp's own code was redeemed once; a code presented twice is a replay.
    let code = system.code_for("epoch_time", "bob").await;
    assert_eq!(system.redeem(&code).await, 200);
    assert_eq!(system.redeem(&code).await, 400);
    let authorization_server = scrape(&system, &system.authorization_server).await;
    assert_eq!(
        value(
            &authorization_server,
            r#"oauth_authorization_code_redemptions_total{outcome="replayed"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &authorization_server,
            r#"oauth_authorization_code_redemptions_total{outcome="redeemed"}"#
        ),
        2.0
    );
}
