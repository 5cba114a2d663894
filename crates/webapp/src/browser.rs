//! The front channel: a browser (or `curl -L` with a cookie jar) starts a login at
//! `/login/<endpoint>` and is sent to the authorization server; the authorization server sends it
//! back to `/callback` with the code, which finishes the flow. Thin handlers over
//! [`Flow::start_login`] and [`Flow::finish_login`], with the pending login in
//! [`crate::login`]'s cookie and a page ([`crate::page`]) for a caller that asks for HTML.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use common::api_error::ApiError;
use common::request_id::{self, RequestId};
use oauth::resource::{CurrentTime, EpochTime};
use oauth::{ErrorBody, Scope, UserName};

use crate::error::Error;
use crate::flow::Flow;
use crate::page::{self, StepTime};
use crate::redirect::{self, RedirectError};
use crate::routes::{user_from_query, UserRefused};

/// Starts a login in this browser for scope `current_time` as `user`: a fresh state and PKCE
/// verifier sealed in its cookie, and a redirect to the authorization server's `/authorize`.
#[utoipa::path(
    get,
    path = "/login/current_time",
    tag = "browser",
    params(("user" = Option<UserName>, Query, description = "The user (default: the configured one).")),
    responses(
        (status = 302, description = "To the authorization server's public `/authorize`; sets the login cookie.",
         headers(("Location" = String), ("Set-Cookie" = String), ("Cache-Control" = String))),
        UserRefused,
    )
)]
pub async fn login_current_time(
    State(flow): State<Arc<Flow>>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    login(&flow, Scope::CurrentTime, query.as_deref())
}

/// Starts a login in this browser for scope `epoch_time` as `user`: a fresh state and PKCE
/// verifier sealed in its cookie, and a redirect to the authorization server's `/authorize`.
#[utoipa::path(
    get,
    path = "/login/epoch_time",
    tag = "browser",
    params(("user" = Option<UserName>, Query, description = "The user (default: the configured one).")),
    responses(
        (status = 302, description = "To the authorization server's public `/authorize`; sets the login cookie.",
         headers(("Location" = String), ("Set-Cookie" = String), ("Cache-Control" = String))),
        UserRefused,
    )
)]
pub async fn login_epoch_time(
    State(flow): State<Arc<Flow>>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    login(&flow, Scope::EpochTime, query.as_deref())
}

fn login(flow: &Flow, scope: Scope, query: Option<&str>) -> Result<Response, Error> {
    request_id::record_client(&flow.config().deployment.client_id);
    let user = user_from_query(query, &flow.config().default_user)?;
    request_id::record_user(&user);
    let (url, pending) = flow.start_login(scope, &user, flow.now());
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    insert(headers, LOCATION, url.as_str());
    insert(headers, SET_COOKIE, &flow.cookies().seal(&pending));
    Ok(response)
}

/// The registered redirect URI: finishes this browser's pending login (its cookie's `state` must
/// match, `iss` must be the issuer), redeems the code and calls the resource server. The answer is
/// the resource server's JSON, or a page for a caller asking for `text/html`. The login cookie is
/// deleted either way, so a callback URL works once; without a pending login, every code is
/// refused (never redeem a code we did not ask for, RFC 6749 §10.12).
#[utoipa::path(
    get,
    path = "/callback",
    tag = "browser",
    params(
        ("code" = Option<String>, Query),
        ("state" = Option<String>, Query),
        ("iss" = Option<String>, Query),
        ("error" = Option<String>, Query),
        ("error_description" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "The resource server's answer for the login's user and endpoint (JSON, or a page).",
         content((EpochTime = "application/json"), (CurrentTime = "application/json"), (String = "text/html"))),
        (status = 400, description = "The redirect is refused: no login in progress in this browser (replayed, expired, started elsewhere), the state is not this browser's, a wrong or missing issuer, an error from the authorization server.",
         content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 502, description = "An upstream refused or answered something unusable; `step` names which.", body = ErrorBody),
        (status = 503, description = "An upstream is unreachable or busy.", body = ErrorBody),
        (status = 504, description = "An upstream did not answer in time.", body = ErrorBody),
    )
)]
pub async fn callback(
    State(flow): State<Arc<Flow>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    request_id::record_client(&flow.config().deployment.client_id);
    let query = query.unwrap_or_default();
    let html = page::wants_html(&headers);
    let now = flow.now();
    let mut response = match flow.cookies().open(&headers, now) {
        Some(login) => {
            request_id::record_user(&login.user);
            match flow.finish_login(&login, &query, &request_id).await {
                Ok(finished) => {
                    let steps = [
                        StepTime {
                            name: "authorize",
                            what: "your browser to the authorization server's /authorize and \
                                   back to /callback with a code (state and iss checked)",
                            took: login.age(now),
                        },
                        StepTime {
                            name: "token",
                            what: "the webapp's POST /token with the code and the PKCE verifier",
                            took: finished.token_time,
                        },
                        StepTime {
                            name: "resource",
                            what: "the webapp's call to the resource server with the access token",
                            took: finished.resource_time,
                        },
                    ];
                    let json = String::from_utf8_lossy(&finished.body).into_owned();
                    let mut response =
                        ([(CONTENT_TYPE, "application/json")], finished.body).into_response();
                    response
                        .headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    if html {
                        let answer = page::answer(login.scope, &login.user, &json, &steps);
                        response = page::html(response, answer);
                    }
                    response
                }
                Err(err) => refused(err, html),
            }
        }
        // No login of this browser is waiting: an error redirect or a wrong issuer is still
        // reported as such, any code is refused (CSRF: never redeem a code we did not ask for).
        None => {
            let refusal = match redirect::check_redirect_query(
                &query,
                &flow.config().deployment.issuer,
                None,
            ) {
                Ok(_code) => RedirectError::UnknownState,
                Err(err) => err,
            };
            refused(Error::Callback(refusal), html)
        }
    };
    insert(
        response.headers_mut(),
        SET_COOKIE,
        &flow.cookies().removal(),
    );
    response
}

fn refused(error: Error, html: bool) -> Response {
    let (status, body) = (error.status(), error.body());
    let response = error.into_response();
    if html {
        page::html(response, page::refusal(status.as_u16(), &body))
    } else {
        response
    }
}

/// Inserts a header whose value we built (a URL, a cookie): always valid, skipped if not.
fn insert(headers: &mut HeaderMap, name: axum::http::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}
