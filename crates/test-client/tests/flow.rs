//! The client against a stand-in authorization server that checks what the real one checks of
//! a well-formed flow: the query, the state echoed, Basic credentials, the verifier's S256.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use test_client::{ClientIdentity, Error, Pkce, TestClient, CLIENT_ID, REDIRECT_URI};

/// Redirects with the challenge as the code, or `invalid_scope` for any scope but epoch_time.
async fn authorize(Query(query): Query<HashMap<String, String>>) -> Response {
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], REDIRECT_URI);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["login_hint"], "alice");
    let answer = if query["scope"] == "epoch_time" {
        format!("code={}", query["code_challenge"])
    } else {
        "error=invalid_scope".to_owned()
    };
    let location = format!("{REDIRECT_URI}?{answer}&state={}", query["state"]);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn token(headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    // Basic 1234:qwerty
    if headers[header::AUTHORIZATION] != "Basic MTIzNDpxd2VydHk=" {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"invalid_client\"}").into_response();
    }
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["redirect_uri"], REDIRECT_URI);
    if Pkce::from_verifier(form["code_verifier"].clone()).challenge != form["code"] {
        return (StatusCode::BAD_REQUEST, "{\"error\":\"invalid_grant\"}").into_response();
    }
    Json(serde_json::json!({"access_token": "t0ken", "token_type": "Bearer"})).into_response()
}

fn client_of(base: &str, identity: ClientIdentity) -> TestClient {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestClient::new(http, base, identity)
}

async fn stand_in() -> String {
    let router = Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn the_flow_gets_a_token_and_says_which_step_failed() {
    let base = stand_in().await;
    let client = client_of(&base, ClientIdentity::default());
    assert_eq!(
        client.code_and_token("epoch_time", "alice").await.unwrap(),
        "t0ken"
    );

    match client.code("admin", "alice", "s", &Pkce::random()).await {
        Err(Error::Refused(error)) => assert_eq!(error, "invalid_scope"),
        other => panic!("{other:?}"),
    }

    let pkce = Pkce::random();
    let code = client
        .code("epoch_time", "alice", "s", &pkce)
        .await
        .unwrap();
    let form = test_client::token_form(client.identity(), &code, "another verifier");
    assert_eq!(client.token(&form).await.unwrap().status(), 400);
    let wrong = ClientIdentity {
        secret: "wrong".into(),
        ..ClientIdentity::default()
    };
    let refused = client_of(&base, wrong);
    let error = refused
        .code_and_token("epoch_time", "alice")
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("token: status 401: "),
        "{error}"
    );

    let nobody = client_of("http://127.0.0.1:1", ClientIdentity::default());
    let error = nobody
        .code_and_token("epoch_time", "alice")
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "authorize: cannot connect");
}
