//! The routes, each declared with its OpenAPI documentation, and their handlers: parse the
//! request, call [`App`], map the result. Nothing else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use common::openapi::{Health, HttpSecurity};
use oauth::{ErrorBody, UserName};
use utoipa::openapi::security::HttpAuthScheme;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, Metadata, TokenResponse};
use crate::error::{Error, OAuthError};
use crate::params::Params;
use crate::AuthorizationServer;

/// The service's own routes, each with its documentation.
pub(crate) fn openapi_router() -> OpenApiRouter<AuthorizationServer> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(metadata))
        .routes(routes!(jwks))
        .routes(routes!(authorize))
        .routes(routes!(token))
        .routes(routes!(readyz))
}

/// RFC 6749 §4.1.1 authorization request (PKCE S256 required). Every outcome the client may learn
/// of is a redirect to its `redirect_uri`; only a request whose client or redirect URI cannot be
/// trusted is refused here, without redirecting (RFC 6749 §4.1.2.1).
#[utoipa::path(
    get,
    path = "/authorize",
    tag = "oauth",
    params(
        ("response_type" = String, Query, description = "Must be `code`.", example = "code"),
        ("client_id" = String, Query, description = "The registered client."),
        ("redirect_uri" = Option<String>, Query, description = "Exactly the registered redirect URI (optional: the client has one)."),
        ("scope" = String, Query, description = "Exactly one of `current_time`, `epoch_time`.", example = "epoch_time"),
        ("state" = Option<String>, Query, description = "Echoed in the redirect."),
        ("code_challenge" = String, Query, description = "RFC 7636 S256 challenge (required).", example = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method" = Option<String>, Query, description = "Must be `S256`.", example = "S256"),
        ("resource" = Option<String>, Query, description = "RFC 8707: the resource server endpoint the token is for."),
        ("login_hint" = UserName, Query, description = "The user the code is issued for."),
    ),
    responses(
        (status = 302, description = "To the client's redirect URI with `code`, `state` and `iss`, or with `error` (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207): `temporarily_unavailable` when this address asks for codes faster than `AUTHORIZE_RATE_PER_SECOND` or `MAX_LIVE_CODES` codes are live.",
         headers(
            ("Location" = String, description = "The client's redirect URI with the response parameters."),
            ("Cache-Control" = String, description = "`no-store`."),
         )),
        (status = 400, description = "Unknown client, or a missing, malformed or unregistered redirect URI: not redirected.",
         body = ErrorBody, headers(("Cache-Control" = String), ("Pragma" = String))),
        (status = 503, description = "The code store is unavailable.",
         body = ErrorBody, headers(("Cache-Control" = String), ("Pragma" = String))),
    )
)]
pub async fn authorize(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or_default());
    match app.authorize(&params, peer_address(peer)).await {
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

/// RFC 6749 §4.1.3 access token request, the client authenticated with `client_secret_basic` or
/// `client_secret_post` (not both).
#[utoipa::path(
    post,
    path = "/token",
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, description = "The access token (RFC 6749 §5.1).", body = TokenResponse,
         headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        (status = 400, description = "RFC 6749 §5.2 error: `invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, `invalid_target`.",
         body = ErrorBody, headers(("Cache-Control" = String), ("Pragma" = String))),
        (status = 401, description = "`invalid_client`; challenged with `WWW-Authenticate: Basic` unless the client authenticated in the body.",
         body = ErrorBody, headers(("Cache-Control" = String), ("Pragma" = String), ("WWW-Authenticate" = Option<String>))),
        (status = 429, description = "Too many failed client authentications from this address.",
         body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."), ("Cache-Control" = String), ("Pragma" = String))),
        (status = 503, description = "The code store is unavailable.",
         body = ErrorBody, headers(("Cache-Control" = String), ("Pragma" = String))),
    )
)]
pub async fn token(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match token_response(&app, &headers, &body, peer_address(peer)).await {
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

/// The caller's address; without connection info (a router served without it) all callers share
/// one address.
fn peer_address(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    peer.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(addr))| addr.ip(),
    )
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

/// RFC 8414 authorization server metadata.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "The metadata.", body = Metadata))
)]
pub async fn metadata(State(app): State<Arc<App>>) -> Json<Metadata> {
    Json(app.metadata())
}

/// The public signing keys (RFC 7517 JWK Set). The `max-age` bounds how long a resource server
/// keeps trusting a retired key (it refetches on an unknown `kid` anyway).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "oauth",
    responses((status = 200, description = "The JWK Set.", body = JwkSet,
        headers(("Cache-Control" = String, description = "`public, max-age=N`, N = `JWKS_MAX_AGE_SECONDS` (default 5)."))))
)]
pub async fn jwks(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, app.config.jwks_cache_control())],
        Json(app.jwks()),
    )
}

/// Readiness: 200 when the code store answers, 503 `temporarily_unavailable` otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "`ready`.", body = Health),
        (status = 503, description = "The code store does not answer.", body = ErrorBody,
         headers(("Cache-Control" = String), ("Pragma" = String))),
    )
)]
pub async fn readyz(State(app): State<Arc<App>>) -> Result<Json<Health>, Error> {
    app.ready().await?;
    Ok(Json(Health::READY))
}

/// The document's info and components, to which [`openapi_router`] adds the operations.
#[derive(OpenApi)]
#[openapi(
    info(title = "authorization-server", description = "OAuth 2.0 authorization server: authorization code grant with PKCE, RFC 9068 access tokens."),
    components(schemas(ErrorBody, TokenForm, JwkSet, UserName)),
    modifiers(&CLIENT_SECRET_BASIC),
)]
struct ApiDoc;

const CLIENT_SECRET_BASIC: HttpSecurity = HttpSecurity {
    name: "client_secret_basic",
    scheme: HttpAuthScheme::Basic,
    bearer_format: None,
    description: "RFC 6749 §2.3.1: client id and secret, each form-urlencoded",
};

/// The token request form (RFC 6749 §4.1.3, §2.3.1). Documentation only: the handler reads the
/// raw form with [`Params`] so that a repeated parameter is seen and refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TokenForm {
    /// Must be `authorization_code`.
    #[schema(example = "authorization_code")]
    grant_type: String,
    code: String,
    redirect_uri: String,
    /// RFC 7636: 43–128 unreserved characters.
    code_verifier: String,
    /// `client_secret_post` (or alongside Basic, when it must match).
    client_id: Option<String>,
    /// `client_secret_post` only.
    client_secret: Option<String>,
    /// RFC 8707: the resource server endpoint the token is for.
    resource: Option<String>,
}

/// The RFC 7517 JWK Set. Documentation only: the keys module builds the set once per key
/// rotation as JSON.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct JwkSet {
    /// Public keys with `kid`, `use: sig` and `alg`.
    #[schema(value_type = Vec<Object>)]
    keys: Vec<()>,
}
