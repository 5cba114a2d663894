//! The resource server's settings, read and validated once at start-up (see
//! `docs/configuration.md`).

use std::net::SocketAddr;
use std::time::Duration;

use common::config::{origin_string, ConfigError, Env};
use common::deployment::{Deployment, Upstream};
use common::service::ServiceConfig;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8082";
pub const DEFAULT_JWKS_REFETCH_INTERVAL_SECONDS: u64 = 2;

/// Where the authorization server publishes its keys, relative to `AUTHORIZATION_SERVER_URL`.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    /// What a token must name: its `iss`, its `client_id`, its `aud` (the public URL plus the
    /// endpoint's path); and the only signature algorithm accepted (RFC 8725 §3.1: pinned, never
    /// taken from a token).
    pub deployment: Deployment,
    /// How the authorization server is reached; the JWKS is fetched from
    /// `{AUTHORIZATION_SERVER_URL}/.well-known/jwks.json`.
    pub upstream: Upstream,
    /// Least time between two JWKS fetches (an unknown `kid` or a stale key set triggers one).
    pub jwks_refetch_interval: Duration,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: env.socket_addr("RESOURCE_SERVER_LISTEN_ADDR", DEFAULT_LISTEN_ADDR)?,
            deployment: common::deployment::from_env(env)?,
            upstream: common::deployment::upstream(env)?,
            jwks_refetch_interval: Duration::from_secs(env.seconds(
                "JWKS_REFETCH_INTERVAL_SECONDS",
                DEFAULT_JWKS_REFETCH_INTERVAL_SECONDS,
            )?),
        })
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}

impl Config {
    /// The URL of the authorization server's JWKS.
    pub fn jwks_url(&self) -> String {
        format!(
            "{}{JWKS_PATH}",
            origin_string(&self.upstream.authorization_server_url)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let config = Config::from_env(&Env::from_vars(&[])).unwrap();
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8082");
        assert_eq!(
            config.deployment,
            common::deployment::from_env(&Env::from_vars(&[])).unwrap()
        );
        assert_eq!(
            config.jwks_url(),
            "http://127.0.0.1:8081/.well-known/jwks.json"
        );
        assert_eq!(config.jwks_refetch_interval, Duration::from_secs(2));
    }

    #[test]
    fn the_jwks_is_fetched_over_tls_off_loopback() {
        let err = Config::from_env(&Env::from_vars(&[(
            "AUTHORIZATION_SERVER_URL",
            "http://authorization-server:8081",
        )]))
        .unwrap_err();
        assert_eq!(err.var, "AUTHORIZATION_SERVER_URL");
        for fine in [
            &[(
                "AUTHORIZATION_SERVER_URL",
                "https://authorization-server:8081",
            )][..],
            &[
                (
                    "AUTHORIZATION_SERVER_URL",
                    "http://authorization-server:8081",
                ),
                ("ALLOW_INSECURE_HTTP", "true"),
            ][..],
        ] {
            assert!(Config::from_env(&Env::from_vars(fine)).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, bad) in [
            ("RESOURCE_SERVER_LISTEN_ADDR", "localhost"),
            ("AUTHORIZATION_SERVER_URL", "http://as/path"),
            ("JWKS_REFETCH_INTERVAL_SECONDS", "0"),
            ("UPSTREAM_TIMEOUT_MS", "0"),
            ("UPSTREAM_TIMEOUT_MS", "soon"),
        ] {
            let err = Config::from_env(&Env::from_vars(&[(var, bad)])).unwrap_err();
            assert_eq!(err.var, var, "{bad}");
        }
    }
}
