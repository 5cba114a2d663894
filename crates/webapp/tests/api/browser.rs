//! The front channel: a login started at `/login/…`, carried by a "browser" (this test, holding
//! the cookie and following the redirects by hand) to the authorization server and back to
//! `/callback`. Each refusal first, then the login that works.

use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::fakes::{AsMode, Harness, RsMode, ISSUER, REDIRECT_URI};

/// A browser: the login cookie it holds, and where it was sent.
struct Browser<'a> {
    app: &'a Harness,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a Harness) -> Self {
        Self { app, cookie: None }
    }

    async fn get(&mut self, url: &str, accept: &str) -> reqwest::Response {
        let mut request = self.app.client.get(url).header(ACCEPT, accept);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = (!set.contains("Max-Age=0")).then_some(pair);
        }
        response
    }

    /// `/login/<endpoint>?user=alice`: the redirect to the authorization server.
    async fn login(&mut self, endpoint: &str) -> url::Url {
        let response = self
            .get(
                &format!("{}/login/{endpoint}?user=alice", self.app.base),
                "*/*",
            )
            .await;
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()["cache-control"], "no-store");
        location(&response)
    }

    /// Follows the redirect to the (fake) authorization server, which answers with a redirect to
    /// the callback: the callback URL, as the webapp would see it.
    async fn authorize(&mut self, authorize: &url::Url) -> String {
        let public = format!("{ISSUER}/authorize");
        assert!(authorize.as_str().starts_with(&public), "{authorize}");
        let url = authorize
            .as_str()
            .replacen(ISSUER, &self.app.authorization_server, 1);
        let response = self.get(&url, "*/*").await;
        assert_eq!(response.status(), 302);
        let callback = location(&response);
        assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
        format!("{}/callback?{}", self.app.base, callback.query().unwrap())
    }

    async fn callback(&mut self, url: &str, accept: &str) -> reqwest::Response {
        self.get(url, accept).await
    }
}

fn location(response: &reqwest::Response) -> url::Url {
    url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap()
}

async fn refused_json(response: reqwest::Response, error: &str) -> Value {
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body
}

#[tokio::test]
async fn a_callback_without_this_browsers_login_redeems_nothing() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let mut victim = Browser::new(&app);
    let authorize = victim.login("epoch_time").await;
    let callback = victim.authorize(&authorize).await;
    // Another browser (no cookie) replaying the victim's callback URL.
    let mut other = Browser::new(&app);
    let body = refused_json(other.callback(&callback, "*/*").await, "invalid_request").await;
    assert_eq!(body["error_description"], "unknown or expired state");
    // A cookie sealed by another webapp (another key) counts as none.
    let other_app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let mut foreign = Browser::new(&other_app);
    foreign.login("epoch_time").await;
    let mut forged = Browser::new(&app);
    forged.cookie = foreign.cookie.clone();
    refused_json(forged.callback(&callback, "*/*").await, "invalid_request").await;
    assert_eq!(app.log.steps(), ["authorize"], "no token request");
}

#[tokio::test]
async fn a_code_for_another_state_is_refused_as_csrf() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    // The attacker's own login, up to its callback URL (the attacker's code and state).
    let mut attacker = Browser::new(&app);
    let authorize = attacker.login("epoch_time").await;
    let attackers_callback = attacker.authorize(&authorize).await;
    // The victim has a login of its own in progress, and is made to load the attacker's callback.
    let mut victim = Browser::new(&app);
    victim.login("epoch_time").await;
    let body = refused_json(
        victim.callback(&attackers_callback, "*/*").await,
        "invalid_request",
    )
    .await;
    assert!(
        body["error_description"].as_str().unwrap().contains("CSRF"),
        "{body}"
    );
    assert!(victim.cookie.is_none(), "the login is used up");
    assert!(!app.log.steps().contains(&"token"), "no token request");
}

#[tokio::test]
async fn a_redirect_from_another_issuer_is_refused_as_a_mix_up() {
    let app = Harness::start(AsMode::WrongIss, RsMode::Normal).await;
    let mut browser = Browser::new(&app);
    let authorize = browser.login("epoch_time").await;
    let callback = browser.authorize(&authorize).await;
    let body = refused_json(browser.callback(&callback, "*/*").await, "invalid_request").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("iss"),
        "{body}"
    );
    // Without iss at all, likewise.
    let mut browser = Browser::new(&app);
    let authorize = browser.login("epoch_time").await;
    let callback = browser.authorize(&authorize).await;
    let without_iss = callback
        .split('&')
        .filter(|pair| !pair.starts_with("iss="))
        .collect::<Vec<_>>()
        .join("&");
    let body = refused_json(
        browser.callback(&without_iss, "*/*").await,
        "invalid_request",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no iss"),
        "{body}"
    );
    assert!(!app.log.steps().contains(&"token"), "no token request");
}

#[tokio::test]
async fn an_error_redirect_is_shown_with_its_error_and_no_token() {
    let app = Harness::start(AsMode::ErrorRedirect, RsMode::Normal).await;
    let mut browser = Browser::new(&app);
    let authorize = browser.login("epoch_time").await;
    let callback = browser.authorize(&authorize).await;
    let response = browser.callback(&callback, "text/html").await;
    assert_eq!(response.status(), 400);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = response.text().await.unwrap();
    assert!(page.contains("<code>access_denied</code>"), "{page}");
    assert!(page.contains("the user said no"), "{page}");
    assert!(!app.log.steps().contains(&"token"), "no token request");
}

#[tokio::test]
async fn a_login_ends_with_the_answer_and_its_callback_works_once() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let mut browser = Browser::new(&app);
    let authorize = browser.login("current_time").await;
    let cookie = browser.cookie.clone().expect("a login cookie");
    assert!(cookie.starts_with("oauth-login="), "{cookie}");
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "current_time");
    assert_eq!(query["login_hint"], "alice");
    assert_eq!(query["code_challenge_method"], "S256");
    let callback = browser.authorize(&authorize).await;

    let response = browser.callback(&callback, "*/*").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"], "alice", "{body}");
    assert!(body["current_time"].is_string(), "{body}");
    assert!(browser.cookie.is_none(), "the callback deletes the cookie");
    assert_eq!(app.log.steps(), ["authorize", "token", "resource"]);
    assert!(app.log.problems().is_empty(), "{:?}", app.log.problems());

    // The same callback URL again: refused, nothing redeemed.
    let replay = browser.callback(&callback, "text/html").await;
    assert_eq!(replay.status(), 400);
    let page = replay.text().await.unwrap();
    assert!(page.contains("unknown or expired state"), "{page}");
    assert_eq!(app.log.steps(), ["authorize", "token", "resource"]);
    // Even with the old cookie put back, the code is spent: the authorization server refuses it.
    browser.cookie = Some(cookie);
    let spent = browser.callback(&callback, "*/*").await;
    assert_eq!(spent.status(), 502);
}

#[tokio::test]
async fn a_browser_gets_a_page_with_the_answer_and_the_three_steps() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let mut browser = Browser::new(&app);
    let authorize = browser.login("epoch_time").await;
    let callback = browser.authorize(&authorize).await;
    let response = browser
        .callback(&callback, "text/html,application/xhtml+xml,*/*;q=0.8")
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let page = response.text().await.unwrap();
    assert!(page.contains("<h1>epoch_time for alice</h1>"), "{page}");
    assert!(page.contains("&quot;epoch_time&quot;"), "{page}");
    for step in ["authorize", "token", "resource"] {
        assert!(page.contains(&format!("<strong>{step}</strong>")), "{page}");
    }
    assert!(!page.contains("<script"), "{page}");
}

#[tokio::test]
async fn a_bad_user_starts_no_login() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let response = app.get("/login/epoch_time?user=al%20ice").await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert!(app.log.steps().is_empty());
}
