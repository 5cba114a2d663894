//! Thin HTTP handlers: parse the request, run the flow, answer.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use common::request_id::{self, RequestId};
use common::{ErrorBody, Scope, UserName};

use crate::error::Error;
use crate::flow::{self, Flow};

pub(crate) fn router(flow: Arc<Flow>) -> Router {
    Router::new()
        .route("/current_time", get(current_time))
        .route("/epoch_time", get(epoch_time))
        .route("/callback", get(callback))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(flow)
}

async fn current_time(
    State(flow): State<Arc<Flow>>,
    Extension(request_id): Extension<RequestId>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    time_endpoint(&flow, Scope::CurrentTime, &request_id, query.as_deref()).await
}

async fn epoch_time(
    State(flow): State<Arc<Flow>>,
    Extension(request_id): Extension<RequestId>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    time_endpoint(&flow, Scope::EpochTime, &request_id, query.as_deref()).await
}

async fn time_endpoint(
    flow: &Flow,
    scope: Scope,
    request_id: &RequestId,
    query: Option<&str>,
) -> Result<Response, Error> {
    request_id::record_client(&flow.config().client_id);
    let user = user_from_query(query, &flow.config().default_user)?;
    request_id::record_user(user.as_str());
    let body = flow.run(scope, &user, request_id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The `user` of a time endpoint: the default when absent; when present, exactly once and a valid
/// [`UserName`] (the empty string included is refused).
fn user_from_query(query: Option<&str>, default: &UserName) -> Result<UserName, Error> {
    let mut users = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(name, _)| name == "user")
        .map(|(_, value)| value);
    let Some(raw) = users.next() else {
        return Ok(default.clone());
    };
    if users.next().is_some() {
        return Err(Error::InvalidRequest(
            "the user parameter is repeated".to_owned(),
        ));
    }
    UserName::parse(&raw).map_err(|err| Error::InvalidRequest(format!("invalid user: {err}")))
}

/// The registered redirect URI.
///
/// The webapp plays the user agent itself: for every user call it sends the authorization request
/// and reads the code from the `Location` header of the authorization server's answer, checking
/// `state` and `iss` there (see [`flow::check_location`]). So no flow ever waits here, and no
/// `state` can match: this route runs the same check ([`flow::check_redirect_query`]) with no
/// pending state, which refuses every code with 400 `invalid_request` "unknown or expired state",
/// and reports an `error` sent by the authorization server as a 400 with that error. It never
/// redeems a code it did not request itself (CSRF defence, RFC 6749 §10.12).
async fn callback(State(flow): State<Arc<Flow>>, RawQuery(query): RawQuery) -> Error {
    request_id::record_client(&flow.config().client_id);
    let refusal = match flow::check_redirect_query(
        query.as_deref().unwrap_or(""),
        &flow.config().issuer,
        None,
    ) {
        // Cannot happen without a pending state; refused all the same.
        Ok(_code) => flow::RedirectError::UnknownState,
        Err(err) => err,
    };
    Error::Callback(refusal)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> (StatusCode, Json<ErrorBody>) {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody::new("not_found", "no such endpoint")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(query: Option<&str>) -> Result<String, String> {
        let default = UserName::parse("alice").unwrap();
        user_from_query(query, &default)
            .map(|u| u.as_str().to_owned())
            .map_err(|e| e.body().error_description)
    }

    #[test]
    fn the_user_defaults_and_is_validated() {
        assert_eq!(user(None), Ok("alice".to_owned()));
        assert_eq!(user(Some("")), Ok("alice".to_owned()));
        assert_eq!(user(Some("other=1")), Ok("alice".to_owned()));
        assert_eq!(user(Some("user=bob")), Ok("bob".to_owned()));
        assert_eq!(user(Some("user=b%40x.io")), Ok("b@x.io".to_owned()));
        for bad in [
            "user=",
            "user",
            "user=a+b",
            "user=a%2Fb",
            "user=bob&user=bob",
        ] {
            assert!(user(Some(bad)).is_err(), "{bad}");
        }
    }
}
