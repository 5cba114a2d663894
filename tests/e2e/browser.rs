//! A browser's login through the three real services: the webapp's `/login/…`, the authorization
//! server's `/authorize`, the webapp's `/callback`; the code it carries works once.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::system::System;

fn location(response: &reqwest::Response) -> url::Url {
    url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_browser_login_ends_with_the_answer_and_its_code_works_once() {
    let system = System::start().await;
    let login = system
        .get(format!("{}/login/epoch_time?user=bob", system.webapp))
        .await;
    assert_eq!(login.status(), 302);
    let cookie = login.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let authorize = location(&login);
    assert!(
        authorize
            .as_str()
            .starts_with(&format!("{}/authorize?", system.authorization_server)),
        "{authorize}"
    );

    let redirect = system.get(authorize.to_string()).await;
    assert_eq!(redirect.status(), 302);
    let back = location(&redirect);
    assert_eq!(back.path(), "/callback");
    // The registered redirect URI names the webapp's default port; this one listens elsewhere.
    let callback = format!("{}/callback?{}", system.webapp, back.query().unwrap());
    let callback_with_cookie = || system.http.get(&callback).header(COOKIE, &cookie).send();

    let answer = callback_with_cookie().await.unwrap();
    assert_eq!(answer.status(), 200);
    let removal = answer.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["user"], "bob");
    assert!(body["epoch_time"].is_i64(), "{body}");

    // A browser that kept the cookie against the webapp's removal: the code is spent, and the
    // authorization server says so.
    let replay = callback_with_cookie().await.unwrap();
    assert_eq!(replay.status(), 502);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(body["step"], "token", "{body}");
}
