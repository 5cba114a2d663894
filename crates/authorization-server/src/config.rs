use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use common::config::{ConfigError, Env, MAX_JWKS_MAX_AGE_SECONDS};
use common::deployment::Deployment;
use common::service::ServiceConfig;
use oauth::Scope;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::authorize_rate::AuthorizeRate;
use crate::client::RegisteredClient;

/// Every setting of the authorization server, read once at start-up (see docs/configuration.md).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    /// The settings all three services share; its issuer is never derived from a request's `Host`.
    pub deployment: Deployment,
    pub client: RegisteredClient,
    pub signing_key_file: Option<PathBuf>,
    /// A directory of PEM keys with an `ACTIVE` file: the rotatable key set.
    pub signing_keys_dir: Option<PathBuf>,
    pub signing_keys_reload_interval: Duration,
    /// Codes go to Redis (shared by replicas) when set, to memory otherwise. May hold the Redis
    /// user's password (from the URL or `REDIS_PASSWORD_FILE`): a secret.
    pub redis_url: Option<SecretString>,
    /// For `rediss://`: the PEM CA certificate(s) to trust instead of the compiled-in web roots
    /// (a Redis with a certificate from a private CA).
    pub redis_ca_file: Option<PathBuf>,
    pub access_token_ttl: Duration,
    pub code_ttl: Duration,
    /// Codes issued and neither redeemed nor expired, at most (over all replicas with Redis).
    pub max_live_codes: NonZeroUsize,
    /// How fast one address may be issued codes.
    pub authorize_rate: AuthorizeRate,
    /// The `max-age` of the JWKS response: how long a resource server may keep trusting a key
    /// after it is retired.
    pub jwks_max_age: Duration,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let redis_url = redis_url(env)?;
        let deployment = common::deployment::from_env(env)?;
        Ok(Self {
            listen_addr: env.socket_addr("AUTHORIZATION_SERVER_LISTEN_ADDR", "127.0.0.1:8081")?,
            client: RegisteredClient {
                id: deployment.client_id.clone(),
                secret: common::deployment::client_secret(env)?,
                redirect_uri: deployment.redirect_uri.clone(),
                scopes: client_scopes(env)?,
            },
            deployment,
            signing_key_file: env.get("SIGNING_KEY_FILE").map(PathBuf::from),
            signing_keys_dir: signing_keys_dir(env)?,
            signing_keys_reload_interval: Duration::from_secs(
                env.seconds("SIGNING_KEYS_RELOAD_SECONDS", 1)?,
            ),
            redis_ca_file: redis_ca_file(env, redis_url.as_ref().map(|url| url.expose_secret()))?,
            redis_url,
            access_token_ttl: Duration::from_secs(env.seconds("ACCESS_TOKEN_TTL_SECONDS", 5)?),
            code_ttl: Duration::from_secs(env.seconds("AUTHORIZATION_CODE_TTL_SECONDS", 30)?),
            max_live_codes: env.parse_or("MAX_LIVE_CODES", DEFAULT_MAX_LIVE_CODES)?,
            authorize_rate: authorize_rate(env)?,
            jwks_max_age: jwks_max_age(env)?,
        })
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}

impl Config {
    pub fn issuer(&self) -> &str {
        &self.deployment.issuer
    }

    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.issuer())
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer())
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer())
    }

    /// The `Cache-Control` of the JWKS response.
    pub fn jwks_cache_control(&self) -> String {
        format!("public, max-age={}", self.jwks_max_age.as_secs())
    }
}

fn jwks_max_age(env: &Env) -> Result<Duration, ConfigError> {
    const VAR: &str = "JWKS_MAX_AGE_SECONDS";
    let seconds = env.seconds(VAR, 5)?;
    if seconds > MAX_JWKS_MAX_AGE_SECONDS {
        return Err(ConfigError::new(
            VAR,
            seconds.to_string(),
            format!(
                "at most {MAX_JWKS_MAX_AGE_SECONDS}: it is how long a resource server may still \
                 trust a retired key"
            ),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// More than one address can hold at the default rate (1,000 a second for a 30 s TTL), so that one
/// address alone cannot fill it; ≈ 35 MiB when full (the memory store).
const DEFAULT_MAX_LIVE_CODES: NonZeroUsize = match NonZeroUsize::new(50_000) {
    Some(max) => max,
    None => NonZeroUsize::MIN,
};

/// `AUTHORIZE_RATE_PER_SECOND` (default 1,000: a webapp serving a thousand users a second from one
/// address) and `AUTHORIZE_BURST` (default: the rate).
fn authorize_rate(env: &Env) -> Result<AuthorizeRate, ConfigError> {
    const DEFAULT_PER_SECOND: NonZeroU32 = match NonZeroU32::new(1_000) {
        Some(rate) => rate,
        None => NonZeroU32::MIN,
    };
    let per_second = env.parse_or("AUTHORIZE_RATE_PER_SECOND", DEFAULT_PER_SECOND)?;
    let burst = env.parse_or("AUTHORIZE_BURST", per_second)?;
    Ok(AuthorizeRate { per_second, burst })
}

fn signing_keys_dir(env: &Env) -> Result<Option<PathBuf>, ConfigError> {
    let dir = env.get("SIGNING_KEYS_DIR");
    if let (Some(dir), Some(_)) = (&dir, env.get("SIGNING_KEY_FILE")) {
        return Err(ConfigError::new(
            "SIGNING_KEYS_DIR",
            dir.clone(),
            "set SIGNING_KEYS_DIR or SIGNING_KEY_FILE, not both",
        ));
    }
    Ok(dir.map(PathBuf::from))
}

/// `REDIS_URL`, with the password of `REDIS_PASSWORD_FILE` (a docker secret) put in when set: the
/// user name stays in the URL (`rediss://oauth@redis:6379`), the password out of the environment.
fn redis_url(env: &Env) -> Result<Option<SecretString>, ConfigError> {
    const VAR: &str = "REDIS_URL";
    const PASSWORD_FILE: &str = "REDIS_PASSWORD_FILE";
    let Some(raw) = env.get(VAR) else {
        if let Some(path) = env.get(PASSWORD_FILE) {
            return Err(ConfigError::new(
                PASSWORD_FILE,
                path,
                "only used with REDIS_URL",
            ));
        }
        return Ok(None);
    };
    // the value may hold a password: never echo it
    let invalid = |reason: &str| ConfigError::new(VAR, "<hidden>", reason);
    let mut url = match Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "redis" | "rediss") => url,
        _ => return Err(invalid("expected redis://… or rediss://…")),
    };
    if let Some(path) = env.get(PASSWORD_FILE) {
        if url.password().is_some() {
            return Err(ConfigError::new(
                PASSWORD_FILE,
                path,
                "REDIS_URL holds a password already: set one or the other",
            ));
        }
        let password = common::secret_file::read_secret(std::path::Path::new(&path))
            .map_err(|reason| ConfigError::new(PASSWORD_FILE, path.clone(), reason))?;
        url.set_password(Some(&password))
            .map_err(|()| invalid("this URL cannot hold a password"))?;
    }
    Ok(Some(SecretString::from(String::from(url))))
}

fn redis_ca_file(env: &Env, redis_url: Option<&str>) -> Result<Option<PathBuf>, ConfigError> {
    const VAR: &str = "REDIS_CA_FILE";
    let Some(path) = env.get(VAR) else {
        return Ok(None);
    };
    if !redis_url.is_some_and(|url| url.starts_with("rediss://")) {
        return Err(ConfigError::new(
            VAR,
            path,
            "only used with a rediss:// REDIS_URL",
        ));
    }
    Ok(Some(PathBuf::from(path)))
}

fn client_scopes(env: &Env) -> Result<Vec<Scope>, ConfigError> {
    const VAR: &str = "CLIENT_SCOPES";
    let Some(raw) = env.get(VAR) else {
        return Ok(Scope::ALL.to_vec());
    };
    let scopes = raw
        .split_whitespace()
        .map(|name| {
            name.parse::<Scope>()
                .map_err(|_| ConfigError::new(VAR, raw.clone(), format!("unknown scope {name:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err(ConfigError::new(VAR, raw, "at least one scope"));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        let config = Config::from_env(&Env::from_vars(&[])).unwrap();
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(
            config.deployment,
            common::deployment::from_env(&Env::from_vars(&[])).unwrap()
        );
        assert_eq!(config.client.id.as_str(), "1234");
        assert_eq!(
            config.client.redirect_uri.as_str(),
            "http://localhost:8080/callback"
        );
        assert_eq!(config.client.scopes, Scope::ALL);
        assert_eq!(config.access_token_ttl, Duration::from_secs(5));
        assert_eq!(config.code_ttl, Duration::from_secs(30));
        assert_eq!(config.jwks_max_age, Duration::from_secs(5));
        assert_eq!(
            config.jwks_uri(),
            "http://localhost:8081/.well-known/jwks.json"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("SIGNING_ALGORITHM", "HS256"),
            ("CLIENT_SCOPES", "current_time admin"),
            ("REDIRECT_URI", "not a url"),
            ("ISSUER", "http://localhost:8081/path"),
            ("ACCESS_TOKEN_TTL_SECONDS", "0"),
            ("JWKS_MAX_AGE_SECONDS", "0"),
            ("JWKS_MAX_AGE_SECONDS", "soon"),
            ("REDIS_URL", "http://localhost:6379"),
            ("REDIS_CA_FILE", "/etc/redis-ca.pem"),
        ] {
            let err = Config::from_env(&Env::from_vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn the_jwks_max_age_is_at_most_five_minutes() {
        let config = Config::from_env(&Env::from_vars(&[("JWKS_MAX_AGE_SECONDS", "300")])).unwrap();
        assert_eq!(config.jwks_cache_control(), "public, max-age=300");
        let err =
            Config::from_env(&Env::from_vars(&[("JWKS_MAX_AGE_SECONDS", "301")])).unwrap_err();
        assert_eq!(err.var, "JWKS_MAX_AGE_SECONDS");
        assert!(err.reason.contains("at most 300"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config =
            Config::from_env(&Env::from_vars(&[("CLIENT_SECRET", "s3cr3t-value")])).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
        assert!(config.client.authenticate("1234", "s3cr3t-value"));
    }

    #[test]
    fn the_redis_password_comes_from_its_file_and_stays_secret() {
        let path = std::env::temp_dir().join(format!("redis-pw-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "p4ss/word\n").unwrap();
        let file = path.display().to_string();
        let config = Config::from_env(&Env::from_vars(&[
            ("REDIS_URL", "rediss://oauth@redis:6379"),
            ("REDIS_PASSWORD_FILE", &file),
        ]))
        .unwrap();
        let url = config
            .redis_url
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        let parsed = Url::parse(&url).unwrap();
        assert_eq!(parsed.username(), "oauth");
        assert_eq!(parsed.password(), Some("p4ss%2Fword"));
        assert!(!format!("{config:?}").contains("p4ss"));
        let both = Config::from_env(&Env::from_vars(&[
            ("REDIS_URL", "redis://oauth:inline@redis:6379"),
            ("REDIS_PASSWORD_FILE", &file),
        ]))
        .unwrap_err();
        assert_eq!(both.var, "REDIS_PASSWORD_FILE");
        let alone =
            Config::from_env(&Env::from_vars(&[("REDIS_PASSWORD_FILE", &file)])).unwrap_err();
        assert_eq!(alone.var, "REDIS_PASSWORD_FILE");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn client_scopes_may_be_narrowed() {
        let config = Config::from_env(&Env::from_vars(&[("CLIENT_SCOPES", "epoch_time")])).unwrap();
        assert_eq!(config.client.scopes, [Scope::EpochTime]);
    }
}
