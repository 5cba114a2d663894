//! The authorization server's operations, composed from the domain rules, the code store, the
//! signing key and the clock. No HTTP here: the routes parse and map, this decides.

use std::net::IpAddr;
use std::sync::Arc;

use common::request_id::{record_client, record_user};
use common::Clock;
use oauth::AccessTokenClaims;
use serde::Serialize;

use crate::authorize::{self, Granted, Refusal};
use crate::authorize_rate::AuthorizeRateLimit;
use crate::config::Config;
use crate::error::{Error, ErrorCode, OAuthError};
use crate::keys::KeyRing;
use crate::metrics::{CodeRefusal, Metrics};
use crate::params::Params;
use crate::store::{new_code, CodeHash, CodeStore, Grant, Redemption, StoreError};
use crate::throttle::ClientAuthThrottle;
use crate::token;

pub struct App {
    pub config: Config,
    pub keys: Arc<KeyRing>,
    pub store: Arc<dyn CodeStore>,
    pub clock: Arc<dyn Clock>,
    pub throttle: ClientAuthThrottle,
    pub authorize_rate: AuthorizeRateLimit,
    pub metrics: Metrics,
}

/// The successful token response (RFC 6749 §5.1): the access token (an RFC 9068 JWT valid for
/// five seconds) for one endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: &'static str,
}

/// RFC 8414 §2: the authorization server metadata.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: &'static [&'static str],
    pub response_modes_supported: &'static [&'static str],
    pub grant_types_supported: &'static [&'static str],
    pub code_challenge_methods_supported: &'static [&'static str],
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    pub authorization_response_iss_parameter_supported: bool,
}

impl App {
    /// Handles an authorization request from `peer`; `Ok` is where to redirect the user agent
    /// (with a code or with an error), `Err` an error the user must see without a redirect.
    pub async fn authorize(&self, params: &Params<'_>, peer: IpAddr) -> Result<String, Error> {
        let client = &self.config.client;
        let issuer = self.config.issuer();
        match authorize::authorize(
            params,
            client,
            &self.config.deployment.resource_server_public_url,
        ) {
            Ok(Granted { grant, state }) => {
                record_client(&grant.client_id);
                record_user(&grant.user);
                Ok(match self.issue_code(grant, peer).await {
                    Ok(code) => authorize::success_location(
                        &client.redirect_uri,
                        &code,
                        state.as_deref(),
                        issuer,
                    ),
                    Err(error) => authorize::error_location(
                        &client.redirect_uri,
                        &error,
                        state.as_deref(),
                        issuer,
                    ),
                })
            }
            Err(Refusal::ByRedirect { error, state }) => {
                record_client(&client.id);
                tracing::info!(error = %error, "authorization request refused by redirect");
                Ok(authorize::error_location(
                    &client.redirect_uri,
                    &error,
                    state.as_deref(),
                    issuer,
                ))
            }
            Err(Refusal::Direct(error)) => Err(Error::AuthorizeNoRedirect(error)),
        }
    }

    /// A new code for `grant`, unless `peer` asks too fast or the store is full or down; the
    /// refusal is told to the client as `temporarily_unavailable` (RFC 6749 §4.1.2.1).
    async fn issue_code(&self, grant: Grant, peer: IpAddr) -> Result<String, OAuthError> {
        let unavailable =
            |description: &str| OAuthError::new(ErrorCode::TemporarilyUnavailable, description);
        if !self.authorize_rate.allow(peer) {
            self.metrics.code_refused(CodeRefusal::RateLimited);
            return Err(unavailable(
                "too many authorization requests from this address; retry shortly",
            ));
        }
        let code = new_code();
        let stored = self
            .store
            .put(
                &CodeHash::of(&code),
                grant,
                self.clock.now(),
                self.config.code_ttl,
            )
            .await;
        match stored {
            Ok(()) => {
                self.metrics.code_issued();
                // DEBUG: the request's INFO "request handled" line (route /authorize, status
                // 302, user_id, client_id) already says it, and the metric counts it; the second
                // INFO line per request cost ≈ 3 % of the server's CPU per call.
                tracing::debug!("authorization code issued");
                Ok(code)
            }
            Err(StoreError::Full(max_live_codes)) => {
                // DEBUG, and counted: a flood would otherwise write a line per request.
                tracing::debug!(max_live_codes, "the code store is full");
                self.metrics.code_refused(CodeRefusal::StoreFull);
                Err(unavailable(
                    "the authorization server holds as many codes as it may; retry shortly",
                ))
            }
            Err(err @ StoreError::Unavailable(_)) => {
                tracing::error!(error = %err, "cannot store the authorization code");
                self.metrics.code_refused(CodeRefusal::StoreUnavailable);
                Err(unavailable(
                    "the authorization server cannot issue codes right now; retry shortly",
                ))
            }
        }
    }

    /// Handles a token request: authenticates the client, redeems the code once, signs the token.
    pub async fn token(
        &self,
        authorization: Option<&str>,
        params: &Params<'_>,
        peer: IpAddr,
    ) -> Result<TokenResponse, Error> {
        let client = &self.config.client;
        let credentials =
            token::presented_credentials(authorization, params).map_err(Error::Token)?;
        let claimed_id = credentials.client_id.as_deref().unwrap_or_default();
        let now = self.clock.now();
        self.throttle
            .check(claimed_id, peer, now)
            .map_err(|retry_after| Error::SlowDown { retry_after })?;
        if let Err(error) = token::authenticate(&credentials, client) {
            self.throttle.record_failure(claimed_id, peer, now);
            return Err(Error::InvalidClient {
                error,
                method: credentials.method,
            });
        }
        self.throttle.record_success(claimed_id, peer);
        record_client(&client.id);
        let request = token::parse_token_request(params).map_err(Error::Token)?;

        let now = self.clock.now();
        let redemption = self.store.take(&CodeHash::of(&request.code), now).await?;
        self.metrics.code_presented(&redemption);
        let grant = match redemption {
            Redemption::Redeemed(grant) => grant,
            Redemption::AlreadyRedeemed => {
                // Tokens already issued from this code are self-contained and live 5 s: they
                // can't be revoked, a deliberate choice (README, "Design decisions").
                tracing::warn!("replayed authorization code refused");
                return Err(Error::Token(OAuthError::invalid_grant(
                    "the code was already used",
                )));
            }
            Redemption::Expired => {
                return Err(Error::Token(OAuthError::invalid_grant(
                    "the code has expired",
                )))
            }
            Redemption::Unknown => {
                return Err(Error::Token(OAuthError::invalid_grant("unknown code")))
            }
        };
        record_user(&grant.user);
        token::check_grant(&grant, &client.id, &request).map_err(Error::Token)?;

        let claims = token::claims_for(
            &grant,
            self.config.issuer(),
            self.clock.since_epoch(),
            self.config.access_token_ttl,
        );
        let access_token = self.sign(&claims)?;
        self.metrics.token_issued(grant.scope);
        // DEBUG, as "authorization code issued": "request handled" (route /token, status 200,
        // user_id, client_id) and the per-scope metric carry it.
        tracing::debug!(scope = grant.scope.as_str(), "access token issued");
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl.as_secs(),
            scope: grant.scope.as_str(),
        })
    }

    fn sign(&self, claims: &AccessTokenClaims) -> Result<String, Error> {
        Ok(self.keys.current().active().sign_jwt(claims)?)
    }

    /// RFC 8414 metadata.
    pub fn metadata(&self) -> Metadata {
        let config = &self.config;
        Metadata {
            issuer: config.issuer().to_owned(),
            authorization_endpoint: config.authorization_endpoint(),
            token_endpoint: config.token_endpoint(),
            jwks_uri: config.jwks_uri(),
            scopes_supported: config.client.scopes.iter().map(|s| s.as_str()).collect(),
            response_types_supported: &["code"],
            response_modes_supported: &["query"],
            grant_types_supported: &["authorization_code"],
            code_challenge_methods_supported: &["S256"],
            token_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post"],
            authorization_response_iss_parameter_supported: true,
        }
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.keys.current().jwks().clone()
    }

    /// Readiness: the code store answers.
    pub async fn ready(&self) -> Result<(), Error> {
        Ok(self.store.check().await?)
    }
}
