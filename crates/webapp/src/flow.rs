//! The OAuth client: one authorization code flow (RFC 6749 §4.1 with PKCE S256, RFC 8707 resource
//! indicator and RFC 9207 `iss` check) per user call, then the call to the resource server.
//!
//! For a user's `curl` the webapp plays the user agent: it asks `/authorize` itself and reads the
//! redirect from the `Location` header ([`Flow::run`]). For a browser, the user agent carries the
//! authorization request to the authorization server's public URL and the code back to
//! `/callback` ([`Flow::start_login`], [`Flow::finish_login`], with [`crate::login`]'s cookie).
//! Both check the redirect with [`crate::redirect`]'s pure functions and share the token and
//! resource steps; an upstream's refusal is read by [`crate::upstream`].
//!
//! No authorization code, access token, client secret or PKCE verifier is ever logged or put in an
//! error: the `oauth2` secret types print as `[redacted]`, and errors carry only descriptions.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use common::config::origin_string;
use common::http_client::{Answer, HttpClient, Origin, RequestBody};
use common::request_id::{RequestId, HEADER};
use common::Clock;
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use oauth::resource::{CurrentTime, EpochTime};
use oauth::{Scope, UserName};
use oauth2::{AccessToken, AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use serde::Deserialize;
use url::Url;

use crate::config::Config;
use crate::error::{Error, SetupError, Step};
use crate::login::{millis_since_epoch, LoginCookies, PendingLogin};
use crate::metrics::Metrics;
use crate::redirect::{check_location, check_redirect_query, RedirectError};
use crate::upstream::upstream_refusal;

/// Everything a flow needs, built once at start-up and shared by all requests.
pub struct Flow {
    config: Config,
    metrics: Metrics,
    http: HttpClient,
    /// The authorization server as the webapp reaches it, for `/authorize` and `/token`.
    authorization_server: Origin,
    /// The resource server, to whose endpoints only `?user=` is added.
    resource_server: Origin,
    /// The authorization server's `/authorize`, a path on `authorization_server`.
    authorize: AuthorizeEndpoint,
    /// Its public `/authorize`, where a browser is sent.
    browser_authorize: AuthorizeEndpoint,
    /// The token request's constant part (`grant_type`, `redirect_uri`), form-encoded once.
    token_form: String,
    /// `client_secret_basic` (RFC 6749 §2.3.1): the same header on every token request.
    client_authorization: HeaderValue,
    cookies: LoginCookies,
    clock: Arc<dyn Clock>,
}

impl Flow {
    pub fn new(
        config: Config,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        let http = config.upstream.http_client()?;
        let deployment = &config.deployment;
        let origin = |url: &Url, what| {
            origin_string(url)
                .parse()
                .ok()
                .and_then(|uri| Origin::of(&uri).ok())
                .ok_or_else(|| SetupError::Url {
                    what,
                    reason: "not an http(s) origin".to_owned(),
                })
        };
        let authorization_server = origin(
            &config.upstream.authorization_server_url,
            "authorization server",
        )?;
        let resource_server = origin(&config.resource_server_url, "resource server")?;
        let authorize = AuthorizeEndpoint::new(AUTHORIZE_PATH, &config);
        let public_authorize = format!("{}{AUTHORIZE_PATH}", deployment.issuer);
        Url::parse(&public_authorize).map_err(|err| url_error("authorization endpoint", err))?;
        let browser_authorize = AuthorizeEndpoint::new(&public_authorize, &config);
        let token_form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("redirect_uri", deployment.redirect_uri.as_str())
            .finish();
        let client_authorization =
            client_secret_basic(deployment.client_id.as_str(), config.client_secret.expose())?;
        let over_https = deployment.redirect_uri.as_str().starts_with("https:");
        Ok(Self {
            authorization_server,
            resource_server,
            authorize,
            browser_authorize,
            token_form,
            client_authorization,
            cookies: LoginCookies::new(over_https).ok_or(SetupError::Random)?,
            clock,
            config,
            metrics,
            http,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn cookies(&self) -> &LoginCookies {
        &self.cookies
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
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

    /// Sends one upstream request of `step` to `origin`.
    async fn send(
        &self,
        step: Step,
        origin: &Origin,
        request: Request<RequestBody>,
    ) -> Result<Answer, Error> {
        self.http
            .send_to(origin, request)
            .await
            .map_err(|err| Error::transport(step, &err))
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
        let (url, state, verifier) = self.authorization_request(&self.authorize, scope, user);
        let request = request(Method::GET, url, request_id)
            .body(RequestBody::default())
            .map_err(|_| Error::bad_answer(step, "the authorization request is not a URI"))?;
        let answer = self.send(step, &self.authorization_server, request).await?;
        let status = answer.status;
        if !matches!(status, StatusCode::FOUND | StatusCode::SEE_OTHER) {
            return Err(upstream_refusal(step, &answer));
        }
        let location = answer
            .headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                Error::bad_answer(
                    step,
                    format!("a {status} redirect without a usable Location"),
                )
            })?;
        let code = check_location(
            location,
            self.config.deployment.redirect_uri.as_str(),
            &self.config.deployment.issuer,
            state.secret(),
        )
        .map_err(|err| match err {
            RedirectError::Refused { error, description } => Error::Upstream {
                step,
                error,
                description: description
                    .unwrap_or_else(|| "the authorization server refused the request".to_owned()),
            },
            other => Error::bad_answer(step, other.to_string()),
        })?;
        Ok((code, verifier))
    }

    /// A fresh state and PKCE pair, and the authorization request's URL at `endpoint`.
    fn authorization_request(
        &self,
        endpoint: &AuthorizeEndpoint,
        scope: Scope,
        user: &UserName,
    ) -> (String, CsrfToken, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random();
        let url = endpoint.url(
            scope,
            &[
                ("state", state.secret()),
                ("code_challenge", challenge.as_str()),
                ("login_hint", user.as_str()),
            ],
        );
        (url, state, verifier)
    }

    /// A browser's login: where to send the user agent (the authorization server's public
    /// `/authorize`), and what its callback will need, to be sealed in its cookie.
    pub fn start_login(
        &self,
        scope: Scope,
        user: &UserName,
        now: SystemTime,
    ) -> (String, PendingLogin) {
        let (url, state, verifier) =
            self.authorization_request(&self.browser_authorize, scope, user);
        let login = PendingLogin {
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            scope,
            user: user.clone(),
            started_ms: millis_since_epoch(now),
        };
        (url, login)
    }

    /// A browser's callback for `login`: the redirect's query must carry our `state` (CSRF,
    /// RFC 6749 §10.12) and our issuer (mix-up, RFC 9207); then the code is redeemed with the
    /// verifier and the resource server is called, as for a user's `curl`.
    pub async fn finish_login(
        &self,
        login: &PendingLogin,
        query: &str,
        request_id: &RequestId,
    ) -> Result<FinishedLogin, Error> {
        let code = check_redirect_query(query, &self.config.deployment.issuer, Some(&login.state))
            .map_err(Error::Callback)?;
        let verifier = PkceCodeVerifier::new(login.verifier.clone());
        let started = Instant::now();
        let token = self
            .timed(Step::Token, self.redeem(code, verifier, request_id))
            .await?;
        let token_time = started.elapsed();
        let started = Instant::now();
        let body = self
            .timed(
                Step::Resource,
                self.fetch(login.scope, &login.user, &token, request_id),
            )
            .await?;
        Ok(FinishedLogin {
            body,
            token_time,
            resource_time: started.elapsed(),
        })
    }

    /// Step 2: `POST /token` with `client_secret_basic` and the PKCE verifier (RFC 6749 §4.1.3,
    /// RFC 7636 §4.5); the answer must be a Bearer token (§5.1).
    async fn redeem(
        &self,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
        request_id: &RequestId,
    ) -> Result<AccessToken, Error> {
        let step = Step::Token;
        let form = form_urlencoded::Serializer::for_suffix(self.token_form.clone(), 0)
            .append_pair("code", code.secret())
            .append_pair("code_verifier", verifier.secret())
            .finish();
        let request = request(Method::POST, Uri::from_static(TOKEN_PATH), request_id)
            .header(header::AUTHORIZATION, self.client_authorization.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(RequestBody::new(Bytes::from(form)))
            .map_err(|_| Error::bad_answer(step, "the token request is not a valid request"))?;
        let answer = self.send(step, &self.authorization_server, request).await?;
        if answer.status != StatusCode::OK {
            return Err(upstream_refusal(step, &answer));
        }
        let token: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|_| {
            Error::bad_answer(
                step,
                "the authorization server's token response could not be parsed",
            )
        })?;
        if !token.token_type.eq_ignore_ascii_case("Bearer") {
            return Err(Error::bad_answer(
                step,
                format!(
                    "the token type is {:?}, not Bearer",
                    crate::error::clean(&token.token_type, 32)
                ),
            ));
        }
        if token.access_token.is_empty() {
            return Err(Error::bad_answer(step, "the access token is empty"));
        }
        Ok(AccessToken::new(token.access_token))
    }

    /// Step 3: the resource server's endpoint with the bearer token; its 200 body is returned as is,
    /// once it has been read as the endpoint's answer ([`oauth::resource`]) for `user`.
    async fn fetch(
        &self,
        scope: Scope,
        user: &UserName,
        token: &AccessToken,
        request_id: &RequestId,
    ) -> Result<Vec<u8>, Error> {
        let step = Step::Resource;
        let path = format!(
            "{}?user={}",
            scope.path(),
            form_urlencoded::byte_serialize(user.as_str().as_bytes()).collect::<String>()
        );
        let request = request(Method::GET, path, request_id)
            .header(header::AUTHORIZATION, format!("Bearer {}", token.secret()))
            .body(RequestBody::default())
            .map_err(|_| Error::bad_answer(step, "the access token is not a header value"))?;
        let answer = self.send(step, &self.resource_server, request).await?;
        if answer.status != StatusCode::OK {
            return Err(upstream_refusal(step, &answer));
        }
        let body = answer.body;
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

/// What a browser's login ends with: the resource server's answer, and how long the webapp's two
/// calls took.
pub struct FinishedLogin {
    pub body: Vec<u8>,
    pub token_time: Duration,
    pub resource_time: Duration,
}

fn url_error(what: &'static str, err: url::ParseError) -> SetupError {
    SetupError::Url {
        what,
        reason: err.to_string(),
    }
}

/// The authorization server's endpoints, at its origin (its URL has no path).
const AUTHORIZE_PATH: &str = "/authorize";
const TOKEN_PATH: &str = "/token";

/// A request to `path_and_query` (on an upstream's [`Origin`]) carrying the user call's
/// `X-Request-Id`.
fn request<T>(method: Method, path_and_query: T, request_id: &RequestId) -> http::request::Builder
where
    Uri: TryFrom<T>,
    <Uri as TryFrom<T>>::Error: Into<http::Error>,
{
    let builder = Request::builder().method(method).uri(path_and_query);
    match request_id.header_value() {
        Some(value) => builder.header(HEADER, value),
        None => builder,
    }
}

/// A successful token response (RFC 6749 §5.1): the members the webapp uses.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
}

/// An authorization endpoint with the request's constant part for each scope (RFC 6749 §4.1.1,
/// RFC 7636 §4.3, RFC 8707's `resource`) encoded once: `oauth2`'s builder parses and encodes all
/// of it again on every call (≈ 12,000 instructions, docs/performance.md).
struct AuthorizeEndpoint {
    current_time: String,
    epoch_time: String,
    /// Where the query starts in each prefix.
    query_start: usize,
}

impl AuthorizeEndpoint {
    /// `endpoint`: an absolute URL, or a path on the authorization server's origin.
    fn new(endpoint: &str, config: &Config) -> Self {
        let query_start = endpoint.len() + 1;
        let prefix = |scope: Scope| {
            form_urlencoded::Serializer::for_suffix(format!("{endpoint}?"), query_start)
                .append_pair("response_type", "code")
                .append_pair("client_id", config.deployment.client_id.as_str())
                .append_pair("redirect_uri", config.deployment.redirect_uri.as_str())
                .append_pair("code_challenge_method", "S256")
                .append_pair("scope", scope.as_str())
                .append_pair("resource", &config.deployment.resource_uri(scope))
                .finish()
        };
        Self {
            current_time: prefix(Scope::CurrentTime),
            epoch_time: prefix(Scope::EpochTime),
            query_start,
        }
    }

    /// The endpoint's URL with the constant parameters of `scope` and `pairs`.
    fn url(&self, scope: Scope, pairs: &[(&str, &str)]) -> String {
        let prefix = match scope {
            Scope::CurrentTime => &self.current_time,
            Scope::EpochTime => &self.epoch_time,
        };
        form_urlencoded::Serializer::for_suffix(prefix.clone(), self.query_start)
            .extend_pairs(pairs)
            .finish()
    }
}

/// The `Authorization` header of `client_secret_basic` (RFC 6749 §2.3.1): the client id and
/// secret are form-encoded before they are joined by `:`; marked sensitive, so never logged.
fn client_secret_basic(client_id: &str, secret: &str) -> Result<HeaderValue, SetupError> {
    let encoded = |raw: &str| form_urlencoded::byte_serialize(raw.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encoded(client_id), encoded(secret));
    let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(credentials)))
        .map_err(|_| SetupError::Url {
            what: "client credentials",
            reason: "not a header value".to_owned(),
        })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        let value = client_secret_basic("a b", "x:y%").unwrap();
        assert_eq!(
            value.to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("a+b:x%3Ay%25"))
        );
        assert!(value.is_sensitive());
    }

    #[test]
    fn the_authorization_url_keeps_its_constant_part_and_encodes_each_value() {
        let endpoint = AuthorizeEndpoint {
            current_time: "https://as.example/authorize?scope=current_time".to_owned(),
            epoch_time: "https://as.example/authorize?scope=epoch_time".to_owned(),
            query_start: "https://as.example/authorize?".len(),
        };
        assert_eq!(
            endpoint.url(
                Scope::EpochTime,
                &[("state", "a&b=c"), ("login_hint", "https://rs/x y")]
            ),
            "https://as.example/authorize?scope=epoch_time&state=a%26b%3Dc\
             &login_hint=https%3A%2F%2Frs%2Fx+y"
        );
        assert_eq!(
            endpoint.url(Scope::CurrentTime, &[]),
            "https://as.example/authorize?scope=current_time"
        );
    }
}
