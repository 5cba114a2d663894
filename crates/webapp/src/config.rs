//! The webapp's settings, read and validated once at start-up (see `docs/configuration.md`).

use std::net::SocketAddr;

use common::config::{ConfigError, Env};
use common::deployment::{Deployment, Upstream};
use common::service::ServiceConfig;
use oauth::{ClientSecret, UserName};
use url::Url;

#[derive(Debug, Clone)]
pub struct Config {
    /// `WEBAPP_LISTEN_ADDR`: HTTPS when the TLS settings name a certificate.
    pub listen_addr: SocketAddr,
    /// `WEBAPP_HTTP_LISTEN_ADDR`: a second listener, always plain HTTP, for users' calls beside
    /// the HTTPS one (what the user sends and gets back there holds no code, token or secret).
    pub plain_listen_addr: Option<SocketAddr>,
    /// The settings all three services share: the issuer is the `iss` a redirect must carry
    /// (RFC 9207), compared exactly; the redirect URI is sent and compared as written.
    pub deployment: Deployment,
    /// How the webapp reaches `/authorize` and `/token`, and its calls' timeout and trusted CAs.
    pub upstream: Upstream,
    /// `RESOURCE_SERVER_URL`: how the webapp reaches the time endpoints.
    pub resource_server_url: Url,
    /// `CLIENT_SECRET` or `CLIENT_SECRET_FILE`; never printed.
    pub client_secret: ClientSecret,
    /// `DEFAULT_USER`: the user of a call that names none.
    pub default_user: UserName,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default_user = env
            .get("DEFAULT_USER")
            .unwrap_or_else(|| "alice".to_owned());
        let default_user = UserName::parse(&default_user)
            .map_err(|err| ConfigError::new("DEFAULT_USER", default_user.clone(), err))?;
        Ok(Self {
            listen_addr: env.socket_addr("WEBAPP_LISTEN_ADDR", "127.0.0.1:8080")?,
            plain_listen_addr: match env.get("WEBAPP_HTTP_LISTEN_ADDR") {
                Some(_) => Some(env.socket_addr("WEBAPP_HTTP_LISTEN_ADDR", "")?),
                None => None,
            },
            deployment: common::deployment::from_env(env)?,
            upstream: common::deployment::upstream(env)?,
            resource_server_url: env
                .secure_base_url("RESOURCE_SERVER_URL", "http://127.0.0.1:8082")?,
            client_secret: common::deployment::client_secret(env)?,
            default_user,
        })
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    fn plain_listen_addr(&self) -> Option<SocketAddr> {
        self.plain_listen_addr
    }
}

#[cfg(test)]
mod tests {
    use common::config::origin_string;

    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let config = Config::from_env(&Env::from_vars(&[])).unwrap();
        assert_eq!(config.listen_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            config.deployment,
            common::deployment::from_env(&Env::from_vars(&[])).unwrap()
        );
        assert_eq!(
            origin_string(&config.upstream.authorization_server_url),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            origin_string(&config.resource_server_url),
            "http://127.0.0.1:8082"
        );
        assert_eq!(config.client_secret.expose(), "qwerty");
        assert_eq!(config.default_user.as_str(), "alice");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, bad) in [
            ("DEFAULT_USER", "al ice"),
            ("UPSTREAM_TIMEOUT_MS", "0"),
            ("UPSTREAM_TIMEOUT_MS", "soon"),
            ("WEBAPP_LISTEN_ADDR", "localhost"),
        ] {
            let err = Config::from_env(&Env::from_vars(&[(var, bad)])).unwrap_err();
            assert_eq!(err.var, var, "{bad}");
        }
    }

    #[test]
    fn clear_text_off_loopback_stops_start_up_unless_allowed() {
        for (var, value) in [
            (
                "AUTHORIZATION_SERVER_URL",
                "http://authorization-server:8081",
            ),
            ("RESOURCE_SERVER_URL", "http://resource-server:8082"),
        ] {
            let err = Config::from_env(&Env::from_vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
            let allowed = Env::from_vars(&[(var, value), ("ALLOW_INSECURE_HTTP", "true")]);
            assert!(Config::from_env(&allowed).is_ok(), "{var}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config =
            Config::from_env(&Env::from_vars(&[("CLIENT_SECRET", "s3cr3t-value")])).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
    }
}
