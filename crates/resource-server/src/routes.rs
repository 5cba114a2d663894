//! The HTTP surface: the routes, each declared with its OpenAPI documentation, and their thin
//! handlers over [`crate::request`], [`crate::jwks`] and [`crate::validation`].

use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use common::openapi::HttpSecurity;
use common::request_id::{record_client, record_user, RequestId};
use oauth::resource::{CurrentTime, EpochTime};
use oauth::{ErrorBody, Scope, UserName};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::openapi::security::HttpAuthScheme;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Error;
use crate::{request, ResourceServer};

/// The service's own routes, each with its documentation.
pub(crate) fn openapi_router() -> OpenApiRouter<ResourceServer> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(current_time))
        .routes(routes!(epoch_time))
}

/// The refusals of both endpoints (RFC 6750 §3.1), documented once.
#[derive(utoipa::IntoResponses)]
#[expect(
    dead_code,
    reason = "documentation only: the answers themselves are built by Error"
)]
enum Refusals {
    #[response(status = 400, description = "RFC 6750 `invalid_request`: the token in the query string, a malformed Authorization header, a missing, repeated or invalid `user`.",
        headers(("WWW-Authenticate" = String), ("Cache-Control" = String)))]
    InvalidRequest(ErrorBody),
    #[response(status = 401, description = "No access token (a bare `Bearer` challenge) or RFC 6750 `invalid_token`.",
        headers(("WWW-Authenticate" = String), ("Cache-Control" = String)))]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "RFC 6750 `insufficient_scope`: the token is for another endpoint or another user.",
        headers(("WWW-Authenticate" = String), ("Cache-Control" = String)))]
    Forbidden(ErrorBody),
    #[response(status = 503, description = "The authorization server's signing keys cannot be fetched.",
        headers(("Cache-Control" = String)))]
    Unavailable(ErrorBody),
}

/// The current time as RFC 3339, for a token with scope `current_time`.
#[utoipa::path(
    get,
    path = "/current_time",
    tag = "resources",
    params(("user" = UserName, Query, description = "The user the token was issued for.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The time.", body = CurrentTime, headers(("Cache-Control" = String))),
        Refusals,
    )
)]
async fn current_time(
    State(state): State<ResourceServer>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let user = authorize(
        &state,
        &request_id,
        &headers,
        query.as_deref(),
        Scope::CurrentTime,
    )
    .await?;
    let current_time = rfc3339(state.clock.now())?;
    Ok(no_store(Json(CurrentTime { current_time, user })))
}

/// The current Unix time, for a token with scope `epoch_time`.
#[utoipa::path(
    get,
    path = "/epoch_time",
    tag = "resources",
    params(("user" = UserName, Query, description = "The user the token was issued for.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The time.", body = EpochTime, headers(("Cache-Control" = String))),
        Refusals,
    )
)]
async fn epoch_time(
    State(state): State<ResourceServer>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let user = authorize(
        &state,
        &request_id,
        &headers,
        query.as_deref(),
        Scope::EpochTime,
    )
    .await?;
    let epoch_time = state.clock.since_epoch().as_secs();
    Ok(no_store(Json(EpochTime { epoch_time, user })))
}

/// The document's info and components, to which [`openapi_router`] adds the operations.
#[derive(OpenApi)]
#[openapi(
    info(title = "resource-server", description = "The protected time endpoints (RFC 6750 bearer tokens, RFC 9068 JWTs)."),
    components(schemas(ErrorBody, UserName)),
    modifiers(&BEARER_TOKEN),
)]
struct ApiDoc;

const BEARER_TOKEN: HttpSecurity = HttpSecurity {
    name: "bearer",
    scheme: HttpAuthScheme::Bearer,
    bearer_format: Some("JWT"),
    description: "An RFC 9068 access token from the authorization server, for this endpoint",
};

/// Every check of a protected request, in order; on success the user the token was issued for.
/// Counted as accepted or refused (by reason).
async fn authorize(
    state: &ResourceServer,
    request_id: &RequestId,
    headers: &HeaderMap,
    query: Option<&str>,
    requested: Scope,
) -> Result<UserName, Error> {
    let checked = check(state, request_id, headers, query, requested).await;
    match &checked {
        Ok(_) => state.metrics.accepted(),
        Err(error) => state.metrics.refused(error),
    }
    checked
}

async fn check(
    state: &ResourceServer,
    request_id: &RequestId,
    headers: &HeaderMap,
    query: Option<&str>,
    requested: Scope,
) -> Result<UserName, Error> {
    let request::Credentials { token, user } = request::credentials(headers, query)?;
    let token = state.validator.check_header(&token)?;
    let key = state.keys.key(token.kid(), request_id).await?;
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

    /// The routes' paths come from the annotations; tokens name their endpoint by [`Scope::path`].
    #[test]
    fn each_scope_is_served_at_its_path() {
        let document = openapi_router().into_openapi();
        for scope in Scope::ALL {
            assert!(document.paths.paths.contains_key(scope.path()), "{scope:?}");
        }
    }

    #[test]
    fn current_time_is_rfc3339_utc_in_whole_seconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_878_245_750);
        assert_eq!(rfc3339(at).unwrap(), "2026-11-28T15:04:05Z");
    }
}
