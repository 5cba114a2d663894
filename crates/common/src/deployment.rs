//! The deployment's shared settings, with their names, their one set of defaults and their
//! checks, so that adding one is a change of this file alone: [`Deployment`], what all three
//! services must agree on, and [`Upstream`], how the two that call others make their calls. Each
//! service embeds the same values in its configuration.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use oauth::{ClientId, ClientSecret, RedirectUri, Scope};
use rustls::pki_types::CertificateDer;
use url::Url;

use crate::config::{origin_string, ConfigError, Env};
use crate::http_client::{BuildError, HttpClient};

/// What all three services must agree on, read once by each ([`from_env`]): a service never has
/// its own copy of one of these settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// `ISSUER`: the authorization server's public URL without a trailing slash; every token's
    /// `iss` and every redirect's `iss` (RFC 9207), compared exactly.
    pub issuer: String,
    /// `CLIENT_ID`: the one registered client.
    pub client_id: ClientId,
    /// `REDIRECT_URI`: the client's registered callback.
    pub redirect_uri: RedirectUri,
    /// `RESOURCE_SERVER_PUBLIC_URL`: the base of every resource indicator (RFC 8707) and `aud`.
    pub resource_server_public_url: Url,
    /// `SIGNING_ALGORITHM`: the authorization server signs with it, the resource server accepts
    /// nothing else (RFC 8725 §3.1).
    pub signing_algorithm: Algorithm,
}

impl Deployment {
    /// The resource indicator of `scope`'s endpoint, which is also its tokens' `aud`.
    pub fn resource_uri(&self, scope: Scope) -> String {
        scope.resource_uri(&self.resource_server_public_url)
    }
}

pub const ISSUER: &str = "ISSUER";
pub const DEFAULT_ISSUER: &str = "http://localhost:8081";
pub const CLIENT_ID: &str = "CLIENT_ID";
pub const DEFAULT_CLIENT_ID: &str = "1234";
pub const REDIRECT_URI: &str = "REDIRECT_URI";
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:8080/callback";
pub const RESOURCE_SERVER_PUBLIC_URL: &str = "RESOURCE_SERVER_PUBLIC_URL";
pub const DEFAULT_RESOURCE_SERVER_PUBLIC_URL: &str = "http://localhost:8082";
pub const SIGNING_ALGORITHM: &str = "SIGNING_ALGORITHM";
/// The secret of the registered client: `CLIENT_SECRET`, or the file `CLIENT_SECRET_FILE` names.
pub const CLIENT_SECRET: &str = "CLIENT_SECRET";
pub const CLIENT_SECRET_FILE: &str = "CLIENT_SECRET_FILE";
pub const DEFAULT_CLIENT_SECRET: &str = "qwerty";

/// How the two services that call others (the resource server for its JWKS, the webapp for the
/// whole flow) reach the authorization server and make their calls: one set of names and defaults.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `AUTHORIZATION_SERVER_URL`: the authorization server as the other services reach it.
    pub authorization_server_url: Url,
    /// `UPSTREAM_TIMEOUT_MS`: the timeout of every outbound call.
    pub timeout: Duration,
    /// `TLS_CA_FILE`: trusted for every outbound call beside the compiled-in roots.
    pub ca_certificates: Vec<CertificateDer<'static>>,
}

impl Upstream {
    /// The outbound client these settings describe.
    pub fn http_client(&self) -> Result<HttpClient, BuildError> {
        HttpClient::new(self.timeout, &self.ca_certificates)
    }
}

pub const AUTHORIZATION_SERVER_URL: &str = "AUTHORIZATION_SERVER_URL";
pub const DEFAULT_AUTHORIZATION_SERVER_URL: &str = "http://127.0.0.1:8081";
pub const UPSTREAM_TIMEOUT_MS: &str = "UPSTREAM_TIMEOUT_MS";
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 3000;

/// Reads the settings of a service that calls others; off loopback the authorization server is
/// reached over `https` unless `ALLOW_INSECURE_HTTP=true`.
pub fn upstream(env: &Env) -> Result<Upstream, ConfigError> {
    Ok(Upstream {
        authorization_server_url: env
            .secure_base_url(AUTHORIZATION_SERVER_URL, DEFAULT_AUTHORIZATION_SERVER_URL)?,
        timeout: env.millis(UPSTREAM_TIMEOUT_MS, DEFAULT_UPSTREAM_TIMEOUT_MS)?,
        ca_certificates: crate::tls::client_ca_certificates(env)?,
    })
}

/// Reads the shared settings (see docs/configuration.md). The issuer and the redirect URI cross
/// the user's agent: `https`, or `http` on loopback only, unless `ALLOW_INSECURE_HTTP=true`.
pub fn from_env(env: &Env) -> Result<Deployment, ConfigError> {
    Ok(Deployment {
        issuer: origin_string(&env.secure_base_url(ISSUER, DEFAULT_ISSUER)?),
        client_id: ClientId::new(
            env.get(CLIENT_ID)
                .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned()),
        ),
        redirect_uri: redirect_uri(env)?,
        resource_server_public_url: env.base_url(
            RESOURCE_SERVER_PUBLIC_URL,
            DEFAULT_RESOURCE_SERVER_PUBLIC_URL,
        )?,
        signing_algorithm: signing_algorithm(env)?,
    })
}

/// The registered client's secret, for the two services that hold it (the authorization server
/// and the webapp); an error never shows it.
pub fn client_secret(env: &Env) -> Result<ClientSecret, ConfigError> {
    env.secret(CLIENT_SECRET, CLIENT_SECRET_FILE, DEFAULT_CLIENT_SECRET)
        .map(ClientSecret::new)
}

fn redirect_uri(env: &Env) -> Result<RedirectUri, ConfigError> {
    let raw = env
        .get(REDIRECT_URI)
        .unwrap_or_else(|| DEFAULT_REDIRECT_URI.to_owned());
    let (uri, url) = RedirectUri::parse_url(&raw)
        .map_err(|reason| ConfigError::new(REDIRECT_URI, raw.clone(), reason))?;
    env.check_transport(REDIRECT_URI, &url)?;
    Ok(uri)
}

/// `EdDSA` (default), `ES256` or `RS256`: asymmetric only, so that the resource server never holds
/// a key that can sign.
fn signing_algorithm(env: &Env) -> Result<Algorithm, ConfigError> {
    match env.get(SIGNING_ALGORITHM).as_deref().map(str::trim) {
        None | Some("EdDSA") => Ok(Algorithm::EdDSA),
        Some("ES256") => Ok(Algorithm::ES256),
        Some("RS256") => Ok(Algorithm::RS256),
        Some(other) => Err(ConfigError::new(
            SIGNING_ALGORITHM,
            other,
            "expected EdDSA, ES256 or RS256",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        let deployment = from_env(&Env::from_vars(&[])).unwrap();
        assert_eq!(deployment.issuer, "http://localhost:8081");
        assert_eq!(deployment.client_id.as_str(), "1234");
        assert_eq!(
            deployment.redirect_uri.as_str(),
            "http://localhost:8080/callback"
        );
        assert_eq!(
            deployment.resource_uri(Scope::EpochTime),
            "http://localhost:8082/epoch_time"
        );
        assert_eq!(deployment.signing_algorithm, Algorithm::EdDSA);
        assert_eq!(
            client_secret(&Env::from_vars(&[])).unwrap().expose(),
            "qwerty"
        );
    }

    #[test]
    fn upstream_defaults_and_checks() {
        let upstream = upstream(&Env::from_vars(&[])).unwrap();
        assert_eq!(
            origin_string(&upstream.authorization_server_url),
            "http://127.0.0.1:8081"
        );
        assert_eq!(upstream.timeout, std::time::Duration::from_millis(3000));
        assert!(upstream.ca_certificates.is_empty());
        for (var, bad) in [
            (AUTHORIZATION_SERVER_URL, "http://as/path"),
            // clear text off loopback
            (AUTHORIZATION_SERVER_URL, "http://authorization-server:8081"),
            (UPSTREAM_TIMEOUT_MS, "0"),
            (UPSTREAM_TIMEOUT_MS, "soon"),
        ] {
            let err = super::upstream(&Env::from_vars(&[(var, bad)])).unwrap_err();
            assert_eq!(err.var, var, "{bad}");
        }
        let allowed = Env::from_vars(&[
            (AUTHORIZATION_SERVER_URL, "http://authorization-server:8081"),
            ("ALLOW_INSECURE_HTTP", "true"),
        ]);
        assert!(super::upstream(&allowed).is_ok());
    }

    #[test]
    fn the_issuer_loses_its_trailing_slash() {
        let deployment =
            from_env(&Env::from_vars(&[(ISSUER, "https://as.example:9000/")])).unwrap();
        assert_eq!(deployment.issuer, "https://as.example:9000");
    }

    #[test]
    fn only_the_three_asymmetric_algorithms() {
        for (raw, expected) in [
            ("EdDSA", Algorithm::EdDSA),
            ("ES256", Algorithm::ES256),
            ("RS256", Algorithm::RS256),
        ] {
            let deployment = from_env(&Env::from_vars(&[(SIGNING_ALGORITHM, raw)])).unwrap();
            assert_eq!(deployment.signing_algorithm, expected);
        }
        for bad in ["HS256", "none", "eddsa", "PS256", "ES384"] {
            let err = from_env(&Env::from_vars(&[(SIGNING_ALGORITHM, bad)])).unwrap_err();
            assert_eq!(err.var, SIGNING_ALGORITHM, "{bad}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, bad) in [
            (REDIRECT_URI, "/callback"),
            (REDIRECT_URI, "http://localhost:8080/callback?x=1"),
            (REDIRECT_URI, "http://localhost:8080/callback#f"),
            (REDIRECT_URI, "ftp://localhost/callback"),
            (ISSUER, "not a url"),
            (ISSUER, "http://localhost:8081/path"),
            (RESOURCE_SERVER_PUBLIC_URL, "ftp://rs"),
        ] {
            let err = from_env(&Env::from_vars(&[(var, bad)])).unwrap_err();
            assert_eq!(err.var, var, "{bad}");
        }
    }

    #[test]
    fn clear_text_off_loopback_stops_start_up_unless_allowed() {
        for (var, value) in [
            (ISSUER, "http://as.example"),
            (REDIRECT_URI, "http://app.example/callback"),
        ] {
            let err = from_env(&Env::from_vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.reason.contains("ALLOW_INSECURE_HTTP"), "{err}");
            let allowed = Env::from_vars(&[(var, value), ("ALLOW_INSECURE_HTTP", "true")]);
            assert!(from_env(&allowed).is_ok(), "{var}");
        }
        let https = Env::from_vars(&[
            (ISSUER, "https://as.example"),
            (REDIRECT_URI, "https://app.example/callback"),
        ]);
        assert!(from_env(&https).is_ok());
    }

    #[test]
    fn the_secret_comes_from_its_variable_and_never_prints() {
        let secret = client_secret(&Env::from_vars(&[(CLIENT_SECRET, "s3cr3t-value")])).unwrap();
        assert_eq!(secret.expose(), "s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
    }
}
