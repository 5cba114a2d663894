//! The OAuth client: one authorization code flow (RFC 6749 §4.1 with PKCE S256, RFC 8707 resource
//! indicator and RFC 9207 `iss` check) per user call, then the call to the resource server.
//!
//! The webapp plays the user agent: it asks `/authorize` itself and reads the redirect from the
//! `Location` header instead of waiting for a browser to follow it to `/callback`. The checks a
//! `/callback` would make are [`check_location`] and [`check_redirect_query`], pure functions shared
//! with the `/callback` route.
//!
//! No authorization code, access token, client secret or PKCE verifier is ever logged or put in an
//! error: the `oauth2` secret types print as `[redacted]`, and errors carry only descriptions.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use common::config::origin_string;
use common::request_id::{RequestId, HEADER};
use common::resource::{CurrentTime, EpochTime};
use common::{Scope, UserName};
use http::StatusCode;
use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;

use crate::config::Config;
use crate::error::{Error, SetupError, Step};
use crate::metrics::Metrics;

/// Why a redirect from the authorization server is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("the redirect does not go to the registered redirect URI")]
    NotRedirectUri,
    #[error("the redirect repeats the {0} parameter")]
    Repeated(&'static str),
    #[error("the redirect's state is missing or is not ours: possible CSRF")]
    StateMismatch,
    /// No flow of ours is waiting for this redirect.
    #[error("unknown or expired state")]
    UnknownState,
    #[error("the redirect has no iss parameter (RFC 9207)")]
    MissingIssuer,
    #[error("the redirect's iss is not our authorization server (RFC 9207)")]
    WrongIssuer,
    #[error("the redirect carries neither a code nor an error")]
    MissingCode,
    /// The authorization server answered with an error (RFC 6749 §4.1.2.1).
    #[error("the authorization server refused: {error}")]
    Refused {
        error: String,
        description: Option<String>,
    },
}

/// Checks the `Location` of the authorization server's answer to our own authorization request:
/// it must be the registered redirect URI (compared exactly, without the query) and its query must
/// pass [`check_redirect_query`] with our `state`.
pub fn check_location(
    location: &str,
    redirect_uri: &str,
    issuer: &str,
    state: &str,
) -> Result<AuthorizationCode, RedirectError> {
    if location.contains('#') {
        return Err(RedirectError::NotRedirectUri);
    }
    let (target, query) = location.split_once('?').unwrap_or((location, ""));
    if target != redirect_uri {
        return Err(RedirectError::NotRedirectUri);
    }
    check_redirect_query(query, issuer, Some(state))
}

/// Checks the query of a redirect to our redirect URI, in this order:
/// 1. none of `state`, `iss`, `code`, `error`, `error_description` is repeated;
/// 2. with a `pending_state` (a flow of ours waiting for this redirect), `state` is exactly it;
///    without one (`/callback`), nothing may ever be redeemed: anything but an `error` is
///    [`RedirectError::UnknownState`];
/// 3. `iss` is present and exactly `issuer` (RFC 9207; our authorization server always sends it);
/// 4. an `error` is reported as [`RedirectError::Refused`];
/// 5. otherwise the non-empty `code` is returned.
pub fn check_redirect_query(
    query: &str,
    issuer: &str,
    pending_state: Option<&str>,
) -> Result<AuthorizationCode, RedirectError> {
    let params = RedirectParams::parse(query)?;
    match pending_state {
        Some(expected) if params.state.as_deref() != Some(expected) => {
            return Err(RedirectError::StateMismatch)
        }
        None if params.error.is_none() => return Err(RedirectError::UnknownState),
        _ => {}
    }
    match params.iss.as_deref() {
        None => return Err(RedirectError::MissingIssuer),
        Some(iss) if iss != issuer => return Err(RedirectError::WrongIssuer),
        Some(_) => {}
    }
    if let Some(error) = params.error {
        // Cleaned here: these come from a query string anyone can send to /callback, and end up
        // in log lines and bodies.
        return Err(RedirectError::Refused {
            error: crate::error::clean(&error, 64),
            description: params
                .error_description
                .map(|description| crate::error::clean(&description, 256)),
        });
    }
    match params.code {
        Some(code) if !code.is_empty() => Ok(AuthorizationCode::new(code)),
        _ => Err(RedirectError::MissingCode),
    }
}

#[derive(Default)]
struct RedirectParams {
    state: Option<String>,
    iss: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl RedirectParams {
    fn parse(query: &str) -> Result<Self, RedirectError> {
        let mut params = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (name, slot) = match name.as_ref() {
                "state" => ("state", &mut params.state),
                "iss" => ("iss", &mut params.iss),
                "code" => ("code", &mut params.code),
                "error" => ("error", &mut params.error),
                "error_description" => ("error_description", &mut params.error_description),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(RedirectError::Repeated(name));
            }
        }
        Ok(params)
    }
}

/// The `oauth2` client with its authorization and token endpoints set.
type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Everything a flow needs, built once at start-up and shared by all requests.
pub struct Flow {
    config: Config,
    metrics: Metrics,
    http: reqwest::Client,
    oauth: OAuthClient,
    current_time_url: Url,
    epoch_time_url: Url,
}

impl Flow {
    pub fn new(config: Config, metrics: Metrics) -> Result<Self, SetupError> {
        let http = common::http_client::build(config.upstream_timeout, &config.ca_certificates)?;
        let authorization_server = origin_string(&config.authorization_server_url);
        let auth_url = AuthUrl::new(format!("{authorization_server}/authorize"))
            .map_err(|err| url_error("authorization endpoint", err))?;
        let token_url = TokenUrl::new(format!("{authorization_server}/token"))
            .map_err(|err| url_error("token endpoint", err))?;
        let redirect_url = RedirectUrl::new(config.redirect_uri.clone())
            .map_err(|err| url_error("redirect", err))?;
        let oauth = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect_url)
            .set_auth_type(AuthType::BasicAuth);
        let resource_url = |scope: Scope| {
            let raw = format!(
                "{}{}",
                origin_string(&config.resource_server_url),
                scope.path()
            );
            Url::parse(&raw).map_err(|err| url_error("resource server", err))
        };
        Ok(Self {
            current_time_url: resource_url(Scope::CurrentTime)?,
            epoch_time_url: resource_url(Scope::EpochTime)?,
            config,
            metrics,
            http,
            oauth,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs a whole flow for `user` and `scope` and returns the resource server's JSON body.
    pub async fn run(
        &self,
        scope: Scope,
        user: &UserName,
        request_id: &RequestId,
    ) -> Result<Vec<u8>, Error> {
        let (code, verifier) = self
            .timed(Step::Authorize, self.authorize(scope, user, request_id))
            .await?;
        tracing::debug!(scope = scope.as_str(), "authorization code received");
        let token = self
            .timed(Step::Token, self.redeem(code, verifier, request_id))
            .await?;
        tracing::debug!(scope = scope.as_str(), "access token received");
        self.timed(Step::Resource, self.fetch(scope, user, &token, request_id))
            .await
    }

    /// Runs one step's upstream call, measured (`upstream_request_duration_seconds`) and, when it
    /// fails, counted (`upstream_errors_total`).
    async fn timed<T>(
        &self,
        step: Step,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .observe(step, started.elapsed(), result.as_ref().err());
        result
    }

    /// Step 1: `GET /authorize` with a fresh state and PKCE pair; the code comes back in the
    /// redirect's `Location`, checked like `/callback` would.
    async fn authorize(
        &self,
        scope: Scope,
        user: &UserName,
        request_id: &RequestId,
    ) -> Result<(AuthorizationCode, PkceCodeVerifier), Error> {
        let step = Step::Authorize;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .add_scope(oauth2::Scope::new(scope.as_str().to_owned()))
            .set_pkce_challenge(challenge)
            .add_extra_param("login_hint", user.as_str())
            .add_extra_param(
                "resource",
                scope.resource_uri(&self.config.resource_server_public_url),
            )
            .url();
        let response = with_request_id(self.http.get(url), request_id)
            .send()
            .await
            .map_err(|err| Error::transport(step, &err))?;
        let status = response.status();
        if !matches!(status, StatusCode::FOUND | StatusCode::SEE_OTHER) {
            return Err(upstream_refusal(step, response).await);
        }
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                Error::bad_answer(
                    step,
                    format!("a {status} redirect without a usable Location"),
                )
            })?;
        let code = check_location(
            location,
            &self.config.redirect_uri,
            &self.config.issuer,
            state.secret(),
        )
        .map_err(|err| match err {
            RedirectError::Refused { error, description } => Error::upstream(
                step,
                &error,
                description
                    .as_deref()
                    .unwrap_or("the authorization server refused the request"),
            ),
            other => Error::bad_answer(step, other.to_string()),
        })?;
        Ok((code, verifier))
    }

    /// Step 2: `POST /token` with `client_secret_basic` and the PKCE verifier.
    async fn redeem(
        &self,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
        request_id: &RequestId,
    ) -> Result<oauth2::AccessToken, Error> {
        let step = Step::Token;
        let adapter = HttpAdapter {
            http: self.http.clone(),
            request_id: request_id.clone(),
        };
        let token = self
            .oauth
            .exchange_code(code)
            .set_pkce_verifier(verifier)
            .request_async(&adapter)
            .await
            .map_err(|err| match err {
                RequestTokenError::ServerResponse(response) => Error::upstream(
                    step,
                    response.error().as_ref(),
                    response
                        .error_description()
                        .map_or("the authorization server refused the code", |d| d.as_str()),
                ),
                RequestTokenError::Request(err) => Error::transport(step, &err),
                RequestTokenError::Parse(..) => Error::bad_answer(
                    step,
                    "the authorization server's token response could not be parsed",
                ),
                RequestTokenError::Other(_) => {
                    Error::bad_answer(step, "the authorization server's token response is invalid")
                }
            })?;
        if *token.token_type() != BasicTokenType::Bearer {
            return Err(Error::bad_answer(
                step,
                format!(
                    "the token type is {:?}, not Bearer",
                    crate::error::clean(token.token_type().as_ref(), 32)
                ),
            ));
        }
        if token.access_token().secret().is_empty() {
            return Err(Error::bad_answer(step, "the access token is empty"));
        }
        Ok(token.access_token().clone())
    }

    /// Step 3: the resource server's endpoint with the bearer token; its 200 body is returned as is,
    /// once it has been read as the endpoint's answer ([`common::resource`]) for `user`.
    async fn fetch(
        &self,
        scope: Scope,
        user: &UserName,
        token: &oauth2::AccessToken,
        request_id: &RequestId,
    ) -> Result<Vec<u8>, Error> {
        let step = Step::Resource;
        let mut url = match scope {
            Scope::CurrentTime => self.current_time_url.clone(),
            Scope::EpochTime => self.epoch_time_url.clone(),
        };
        url.query_pairs_mut().append_pair("user", user.as_str());
        let response = with_request_id(self.http.get(url), request_id)
            .bearer_auth(token.secret())
            .send()
            .await
            .map_err(|err| Error::transport(step, &err))?;
        if response.status() != StatusCode::OK {
            return Err(upstream_refusal(step, response).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| Error::transport(step, &err))?;
        let answered_for = match scope {
            Scope::CurrentTime => serde_json::from_slice::<CurrentTime>(&body).map(|b| b.user),
            Scope::EpochTime => serde_json::from_slice::<EpochTime>(&body).map(|b| b.user),
        };
        match answered_for {
            Ok(answered) if answered == *user => Ok(body.to_vec()),
            Ok(_) => Err(Error::bad_answer(
                step,
                "the resource server answered for another user",
            )),
            Err(_) => Err(Error::bad_answer(
                step,
                format!(
                    "the resource server's 200 answer is not one of {}",
                    scope.path()
                ),
            )),
        }
    }
}

fn url_error(what: &'static str, err: url::ParseError) -> SetupError {
    SetupError::Url {
        what,
        reason: err.to_string(),
    }
}

fn with_request_id(
    request: reqwest::RequestBuilder,
    request_id: &RequestId,
) -> reqwest::RequestBuilder {
    match request_id.header_value() {
        Some(value) => request.header(HEADER, value),
        None => request,
    }
}

/// An upstream error body: RFC 6749 §5.2 / our `ErrorBody`, with the description optional.
#[derive(Deserialize)]
struct UpstreamErrorBody {
    error: String,
    error_description: Option<String>,
}

/// A 502 for an upstream's non-success answer, passing its error code through when the body (or,
/// for a resource server, `WWW-Authenticate`) names one.
async fn upstream_refusal(step: Step, response: reqwest::Response) -> Error {
    let status = response.status();
    let challenge_error = response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_challenge_error);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => return Error::transport(step, &err),
    };
    let fallback = format!("the {} answered {status}", step.upstream());
    match serde_json::from_slice::<UpstreamErrorBody>(&body) {
        Ok(parsed) => Error::upstream(
            step,
            &parsed.error,
            parsed.error_description.as_deref().unwrap_or(&fallback),
        ),
        Err(_) => match challenge_error {
            Some(error) => Error::upstream(step, &error, &fallback),
            None => Error::bad_answer(step, fallback),
        },
    }
}

/// The `error` parameter of a `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3).
fn bearer_challenge_error(header: &str) -> Option<String> {
    let rest = header.trim_start();
    let params = rest
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer"))
        .map(|_| &rest[6..])?;
    params.split(',').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        (name.trim() == "error").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// `oauth2`'s HTTP client for the token request: the shared `reqwest::Client` (the `oauth2` crate's
/// own reqwest support is another reqwest version and cannot add per-request headers), plus the
/// request's `X-Request-Id`.
struct HttpAdapter {
    http: reqwest::Client,
    request_id: RequestId,
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpAdapter {
    type Error = reqwest::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request)?;
            if let Some(value) = self.request_id.header_value() {
                request.headers_mut().insert(HEADER, value);
            }
            let response = self.http.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let mut answer = http::Response::new(response.bytes().await?.to_vec());
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIRECT: &str = "http://localhost:8080/callback";
    const ISSUER: &str = "http://localhost:8081";
    const STATE: &str = "s-123";

    fn check(location: &str) -> Result<String, RedirectError> {
        check_location(location, REDIRECT, ISSUER, STATE).map(|code| code.secret().clone())
    }

    fn iss() -> String {
        format!(
            "iss={}",
            url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect::<String>()
        )
    }

    #[test]
    fn a_good_redirect_yields_the_code() {
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state={STATE}&{}", iss())),
            Ok("abc".to_owned())
        );
        // Unknown parameters are ignored, order does not matter.
        assert_eq!(
            check(&format!(
                "{REDIRECT}?{}&x=1&state={STATE}&code=a%2Bb",
                iss()
            )),
            Ok("a+b".to_owned())
        );
    }

    #[test]
    fn wrong_missing_or_repeated_state_is_refused() {
        let iss = iss();
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state=other&{iss}")),
            Err(RedirectError::StateMismatch)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&{iss}")),
            Err(RedirectError::StateMismatch)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state=&{iss}")),
            Err(RedirectError::StateMismatch)
        );
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&state={STATE}&{iss}"
            )),
            Err(RedirectError::Repeated("state"))
        );
    }

    #[test]
    fn wrong_or_missing_iss_is_refused() {
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&iss=http%3A%2F%2Fevil.example"
            )),
            Err(RedirectError::WrongIssuer)
        );
        // Exact comparison: a trailing slash is another issuer.
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&iss=http%3A%2F%2Flocalhost%3A8081%2F"
            )),
            Err(RedirectError::WrongIssuer)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state={STATE}")),
            Err(RedirectError::MissingIssuer)
        );
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&{}&{}",
                iss(),
                iss()
            )),
            Err(RedirectError::Repeated("iss"))
        );
    }

    #[test]
    fn a_location_elsewhere_is_refused() {
        let query = format!("code=abc&state={STATE}&{}", iss());
        for target in [
            "http://evil.example/callback",
            "http://localhost:8080/callback/",
            "http://localhost:8080/callbackx",
            "http://localhost:8080/other",
            "https://localhost:8080/callback",
            "/callback",
        ] {
            assert_eq!(
                check(&format!("{target}?{query}")),
                Err(RedirectError::NotRedirectUri),
                "{target}"
            );
        }
        assert_eq!(
            check(&format!("{REDIRECT}?{query}#frag")),
            Err(RedirectError::NotRedirectUri)
        );
    }

    #[test]
    fn an_error_from_the_server_is_passed_through() {
        assert_eq!(
            check(&format!(
                "{REDIRECT}?error=invalid_scope&error_description=no+such+scope&state={STATE}&{}",
                iss()
            )),
            Err(RedirectError::Refused {
                error: "invalid_scope".to_owned(),
                description: Some("no such scope".to_owned()),
            })
        );
        assert_eq!(
            check(&format!(
                "{REDIRECT}?error=access_denied&state={STATE}&{}",
                iss()
            )),
            Err(RedirectError::Refused {
                error: "access_denied".to_owned(),
                description: None,
            })
        );
        // An error with somebody else's state is not trusted as ours.
        assert_eq!(
            check(&format!(
                "{REDIRECT}?error=access_denied&state=other&{}",
                iss()
            )),
            Err(RedirectError::StateMismatch)
        );
    }

    #[test]
    fn a_missing_or_empty_code_is_refused() {
        assert_eq!(
            check(&format!("{REDIRECT}?state={STATE}&{}", iss())),
            Err(RedirectError::MissingCode)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=&state={STATE}&{}", iss())),
            Err(RedirectError::MissingCode)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=a&code=b&state={STATE}&{}", iss())),
            Err(RedirectError::Repeated("code"))
        );
    }

    #[test]
    fn the_callback_never_yields_a_code() {
        let iss = iss();
        assert_eq!(
            check_redirect_query(&format!("code=abc&state=anything&{iss}"), ISSUER, None)
                .map(|c| c.secret().clone()),
            Err(RedirectError::UnknownState)
        );
        assert_eq!(
            check_redirect_query("code=abc&state=x", ISSUER, None).map(|c| c.secret().clone()),
            Err(RedirectError::UnknownState)
        );
        assert_eq!(
            check_redirect_query("", ISSUER, None).map(|c| c.secret().clone()),
            Err(RedirectError::UnknownState)
        );
        assert_eq!(
            check_redirect_query("error=access_denied&state=x", ISSUER, None)
                .map(|c| c.secret().clone()),
            Err(RedirectError::MissingIssuer)
        );
        assert_eq!(
            check_redirect_query(&format!("error=access_denied&state=x&{iss}"), ISSUER, None)
                .map(|c| c.secret().clone()),
            Err(RedirectError::Refused {
                error: "access_denied".to_owned(),
                description: None,
            })
        );
    }

    #[test]
    fn bearer_challenges_are_read() {
        assert_eq!(
            bearer_challenge_error(r#"Bearer error="invalid_token", error_description="x""#),
            Some("invalid_token".to_owned())
        );
        assert_eq!(
            bearer_challenge_error(r#"Bearer realm="r", error="insufficient_scope""#),
            Some("insufficient_scope".to_owned())
        );
        assert_eq!(bearer_challenge_error("Bearer"), None);
        assert_eq!(bearer_challenge_error("Basic error=\"x\""), None);
    }
}
