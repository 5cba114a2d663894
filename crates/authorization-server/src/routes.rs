//! HTTP handlers: parse the request, call [`App`], map the result. Nothing else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::app::App;
use crate::error::{Error, OAuthError};
use crate::params::Params;

/// How long the JWKS may be cached; a resource server refetches on an unknown `kid` anyway.
const JWKS_MAX_AGE: &str = "public, max-age=60";

pub async fn authorize(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or_default());
    match app.authorize(&params).await {
        Ok(location) => match HeaderValue::try_from(location) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response(),
            Err(_) => Error::AuthorizeNoRedirect(OAuthError::invalid_request(
                "the redirect cannot be expressed as a header",
            ))
            .into_response(),
        },
        Err(err) => err.into_response(),
    }
}

pub async fn token(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Without connection info (a router served without it) all callers share one address.
    let peer = peer.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(addr))| addr.ip(),
    );
    match token_response(&app, &headers, &body, peer).await {
        Ok(response) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(response),
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

async fn token_response(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    peer: IpAddr,
) -> Result<crate::app::TokenResponse, Error> {
    let form_content = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_content {
        return Err(Error::Token(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )));
    }
    let body = std::str::from_utf8(body)
        .map_err(|_| Error::Token(OAuthError::invalid_request("the body is not UTF-8")))?;
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let authorization = match (authorizations.next(), authorizations.next()) {
        (None, _) => None,
        (Some(value), None) => Some(value.to_str().map_err(|_| {
            Error::Token(OAuthError::invalid_request(
                "malformed Authorization header",
            ))
        })?),
        (Some(_), Some(_)) => {
            return Err(Error::Token(OAuthError::invalid_request(
                "more than one Authorization header",
            )))
        }
    };
    app.token(authorization, &Params::parse(body), peer).await
}

pub async fn metadata(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.metadata())
}

pub async fn jwks(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, JWKS_MAX_AGE)], Json(app.jwks()))
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: 200 when the code store answers, 503 `temporarily_unavailable` otherwise.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<Json<serde_json::Value>, Error> {
    app.ready().await?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

pub async fn not_found() -> Error {
    Error::NotFound
}

pub async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
