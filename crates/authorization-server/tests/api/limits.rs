//! What an unauthenticated caller can make the server hold: codes, bounded per address by a rate
//! and in all by `MAX_LIVE_CODES`, refused the OAuth way (RFC 6749 §4.1.2.1) past either.

use std::time::Duration;

use test_client::Redirect;

use crate::helpers::{authorize_params, redeem_form, spawn, TestServer, STATE};

/// What `/authorize` redirected with: `Ok(code)` or `Err(error)`; the state is always echoed.
async fn ask_code(server: &TestServer) -> Result<String, String> {
    let response = server.authorize(&authorize_params("epoch_time")).await;
    match test_client::redirect(&response, server.client.identity(), STATE).unwrap() {
        Redirect::Code(code) => Ok(code),
        Redirect::Error(error) => Err(error),
    }
}

async fn refused(server: &TestServer, reason: &str) -> u64 {
    server
        .metric(&format!(
            "oauth_authorization_codes_refused_total{{reason=\"{reason}\"}}"
        ))
        .await
}

#[tokio::test]
async fn an_address_past_its_rate_gets_temporarily_unavailable_until_its_budget_returns() {
    let server = spawn(&[("AUTHORIZE_RATE_PER_SECOND", "2"), ("AUTHORIZE_BURST", "3")]).await;
    for _ in 0..3 {
        ask_code(&server).await.unwrap();
    }
    assert_eq!(
        ask_code(&server).await,
        Err("temporarily_unavailable".into())
    );
    assert_eq!(refused(&server, "rate_limited").await, 1);
    // one code per 500 ms comes back, not a millisecond earlier
    server.advance(Duration::from_millis(499));
    assert!(ask_code(&server).await.is_err());
    server.advance(Duration::from_millis(1));
    let code = ask_code(&server).await.unwrap();
    assert!(ask_code(&server).await.is_err());
    // redeeming is not limited
    let redeemed = server.token(&redeem_form(&code)).await;
    assert_eq!(redeemed.status(), 200);
}

/// Memory store only: the Redis store's cap is proven with a Redis of its own (tests/api/redis.rs),
/// since the suite's shared Redis holds other tests' codes.
#[tokio::test]
async fn past_max_live_codes_no_code_is_issued_until_one_is_redeemed_or_expires() {
    let server = spawn(&[("MAX_LIVE_CODES", "2"), ("REDIS_URL", "")]).await;
    let first = ask_code(&server).await.unwrap();
    ask_code(&server).await.unwrap();
    assert_eq!(
        ask_code(&server).await,
        Err("temporarily_unavailable".into())
    );
    assert_eq!(refused(&server, "store_full").await, 1);
    assert_eq!(refused(&server, "rate_limited").await, 0);

    // redeeming works at the cap, and gives a place back
    let redeemed = server.token(&redeem_form(&first)).await;
    assert_eq!(redeemed.status(), 200);
    ask_code(&server).await.unwrap();
    assert!(ask_code(&server).await.is_err());

    // expired codes give their places back
    server.advance(Duration::from_secs(31));
    ask_code(&server).await.unwrap();
    ask_code(&server).await.unwrap();
    assert!(ask_code(&server).await.is_err());
}

#[tokio::test]
async fn limits_of_zero_or_garbage_stop_start_up() {
    use authorization_server::Config;
    use common::config::Env;
    use common::service::ServiceConfig;
    for (var, value) in [
        ("MAX_LIVE_CODES", "0"),
        ("MAX_LIVE_CODES", "many"),
        ("AUTHORIZE_RATE_PER_SECOND", "0"),
        ("AUTHORIZE_BURST", "-1"),
    ] {
        let env = Env::from_pairs([(var, value.to_owned())]);
        let err = Config::from_env(&env).unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
    }
}
