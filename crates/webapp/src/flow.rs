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
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use common::config::origin_string;
use common::http_client::{Answer, CallError, HttpClient, RequestBody};
use common::request_id::{RequestId, HEADER};
use common::Clock;
use http::{header, Method, Request, StatusCode};
use oauth::resource::{CurrentTime, EpochTime};
use oauth::{Scope, UserName};
use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    TokenResponse, TokenUrl,
};
use url::Url;

use crate::config::Config;
use crate::error::{Error, SetupError, Step};
use crate::login::{millis_since_epoch, LoginCookies, PendingLogin};
use crate::metrics::Metrics;
use crate::redirect::{check_location, check_redirect_query, RedirectError};
use crate::upstream::upstream_refusal;

/// The `oauth2` client with its authorization and token endpoints set.
type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Everything a flow needs, built once at start-up and shared by all requests.
pub struct Flow {
    config: Config,
    metrics: Metrics,
    http: HttpClient,
    oauth: OAuthClient,
    /// The same client with the authorization server's public `/authorize`, for a browser.
    browser_oauth: OAuthClient,
    cookies: LoginCookies,
    clock: Arc<dyn Clock>,
    /// The resource endpoints' URLs, to which only `?user=` is added.
    current_time_url: String,
    epoch_time_url: String,
}

impl Flow {
    pub fn new(
        config: Config,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        let http = HttpClient::new(config.upstream_timeout, &config.ca_certificates)?;
        let authorization_server = origin_string(&config.authorization_server_url);
        let auth_url = AuthUrl::new(format!("{authorization_server}/authorize"))
            .map_err(|err| url_error("authorization endpoint", err))?;
        let token_url = TokenUrl::new(format!("{authorization_server}/token"))
            .map_err(|err| url_error("token endpoint", err))?;
        let deployment = &config.deployment;
        let redirect_url = RedirectUrl::new(deployment.redirect_uri.as_str().to_owned())
            .map_err(|err| url_error("redirect", err))?;
        let oauth = BasicClient::new(ClientId::new(deployment.client_id.as_str().to_owned()))
            .set_client_secret(ClientSecret::new(config.client_secret.expose().to_owned()))
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
            Url::parse(&raw)
                .map(String::from)
                .map_err(|err| url_error("resource server", err))
        };
        let public_auth_url = AuthUrl::new(format!("{}/authorize", deployment.issuer))
            .map_err(|err| url_error("public authorization endpoint", err))?;
        let browser_oauth = oauth.clone().set_auth_uri(public_auth_url);
        let over_https = deployment.redirect_uri.as_str().starts_with("https:");
        Ok(Self {
            browser_oauth,
            cookies: LoginCookies::new(over_https).ok_or(SetupError::Random)?,
            clock,
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

    /// Sends one upstream request of `step`.
    async fn send(&self, step: Step, request: Request<RequestBody>) -> Result<Answer, Error> {
        self.http
            .send(request)
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
        let (url, state, verifier) = self.authorization_request(&self.oauth, scope, user);
        let request = request(Method::GET, url.as_str(), request_id)
            .body(RequestBody::default())
            .map_err(|_| Error::bad_answer(step, "the authorization request is not a URI"))?;
        let answer = self.send(step, request).await?;
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

    /// A fresh state and PKCE pair, and the authorization request's URL at `client`'s endpoint.
    fn authorization_request(
        &self,
        client: &OAuthClient,
        scope: Scope,
        user: &UserName,
    ) -> (Url, CsrfToken, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(oauth2::Scope::new(scope.as_str().to_owned()))
            .set_pkce_challenge(challenge)
            .add_extra_param("login_hint", user.as_str())
            .add_extra_param("resource", self.config.deployment.resource_uri(scope))
            .url();
        (url, state, verifier)
    }

    /// A browser's login: where to send the user agent (the authorization server's public
    /// `/authorize`), and what its callback will need, to be sealed in its cookie.
    pub fn start_login(
        &self,
        scope: Scope,
        user: &UserName,
        now: SystemTime,
    ) -> (Url, PendingLogin) {
        let (url, state, verifier) = self.authorization_request(&self.browser_oauth, scope, user);
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

    /// Step 2: `POST /token` with `client_secret_basic` and the PKCE verifier.
    async fn redeem(
        &self,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
        request_id: &RequestId,
    ) -> Result<oauth2::AccessToken, Error> {
        let step = Step::Token;
        let adapter = HttpAdapter {
            http: &self.http,
            request_id,
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
    /// once it has been read as the endpoint's answer ([`oauth::resource`]) for `user`.
    async fn fetch(
        &self,
        scope: Scope,
        user: &UserName,
        token: &oauth2::AccessToken,
        request_id: &RequestId,
    ) -> Result<Vec<u8>, Error> {
        let step = Step::Resource;
        let endpoint = match scope {
            Scope::CurrentTime => &self.current_time_url,
            Scope::EpochTime => &self.epoch_time_url,
        };
        let url = format!(
            "{endpoint}?user={}",
            form_urlencoded::byte_serialize(user.as_str().as_bytes()).collect::<String>()
        );
        let request = request(Method::GET, &url, request_id)
            .header(header::AUTHORIZATION, format!("Bearer {}", token.secret()))
            .body(RequestBody::default())
            .map_err(|_| Error::bad_answer(step, "the access token is not a header value"))?;
        let answer = self.send(step, request).await?;
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

/// A request to `uri` carrying the user call's `X-Request-Id`.
fn request(method: Method, uri: &str, request_id: &RequestId) -> http::request::Builder {
    let builder = Request::builder().method(method).uri(uri);
    match request_id.header_value() {
        Some(value) => builder.header(HEADER, value),
        None => builder,
    }
}

/// `oauth2`'s HTTP client for the token request: the shared client plus the request's
/// `X-Request-Id` (`oauth2` builds the request; this sends it).
struct HttpAdapter<'a> {
    http: &'a HttpClient,
    request_id: &'a RequestId,
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpAdapter<'_> {
    type Error = CallError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, CallError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            if let Some(value) = self.request_id.header_value() {
                parts.headers.insert(HEADER, value);
            }
            let request = Request::from_parts(parts, RequestBody::new(Bytes::from(body)));
            let Answer {
                status,
                headers,
                body,
            } = self.http.send(request).await?;
            let mut response = http::Response::new(body.to_vec());
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Ok(response)
        })
    }
}
