//! The HTTP surface: thin handlers over [`crate::request`], [`crate::jwks`] and
//! [`crate::validation`].

use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::request_id::{record_client, record_user};
use common::{Scope, UserName};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::Error;
use crate::{request, AppState};

/// The routes, `/metrics` and the middleware stack of [`common::observability`].
pub fn router(state: AppState) -> Router {
    let observability = state.observability.clone();
    let routes = Router::new()
        .route(Scope::CurrentTime.path(), get(current_time))
        .route(Scope::EpochTime.path(), get(epoch_time))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state);
    observability.wrap(routes)
}

#[derive(Debug, Serialize)]
struct CurrentTime {
    current_time: String,
    user: UserName,
}

#[derive(Debug, Serialize)]
struct EpochTime {
    epoch_time: u64,
    user: UserName,
}

async fn current_time(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let user = authorize(&state, &headers, query.as_deref(), Scope::CurrentTime).await?;
    let current_time = rfc3339(state.clock.now())?;
    Ok(no_store(Json(CurrentTime { current_time, user })))
}

async fn epoch_time(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let user = authorize(&state, &headers, query.as_deref(), Scope::EpochTime).await?;
    let epoch_time = state.clock.since_epoch().as_secs();
    Ok(no_store(Json(EpochTime { epoch_time, user })))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> Response {
    let body = common::ErrorBody::new("not_found", "no such endpoint");
    (axum::http::StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// Every check of a protected request, in order; on success the user the token was issued for.
/// Counted as accepted or refused (by reason).
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    requested: Scope,
) -> Result<UserName, Error> {
    let checked = check(state, headers, query, requested).await;
    match &checked {
        Ok(_) => state.metrics.accepted(),
        Err(error) => state.metrics.refused(error),
    }
    checked
}

async fn check(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    requested: Scope,
) -> Result<UserName, Error> {
    let request::Credentials { token, user } = request::credentials(headers, query)?;
    let kid = state.validator.key_id(&token)?;
    let key = state.keys.key(&kid).await?;
    let claims =
        state
            .validator
            .validate(&token, &key, state.clock.since_epoch(), requested, &user)?;
    record_user(&claims.sub);
    record_client(&claims.client_id);
    Ok(user)
}

/// RFC 3339 in UTC, whole seconds: `2026-11-28T15:04:05Z`.
fn rfc3339(now: SystemTime) -> Result<String, Error> {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| Error::Internal("the clock is before 1970"))?
        .as_secs();
    i64::try_from(secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|time| time.format(&Rfc3339).ok())
        .ok_or(Error::Internal("the time cannot be formatted"))
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn current_time_is_rfc3339_utc_in_whole_seconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_878_245_750);
        assert_eq!(rfc3339(at).unwrap(), "2026-11-28T15:04:05Z");
    }
}
