//! Reading settings from the environment: every service reads all of its settings once, at start-up,
//! through an [`Env`], and refuses to start with a message naming the variable when one is bad.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid value {value:?} for {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &'static str, value: impl Into<String>, reason: impl Display) -> Self {
        Self {
            var,
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}

/// Where settings come from: the process environment, or a map in tests.
#[derive(Debug, Clone, Default)]
pub struct Env {
    overrides: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { overrides: None }
    }

    /// Only the given variables; everything else takes its default.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let map = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Self {
            overrides: Some(map),
        }
    }

    /// Only the given variables, as written in a test: `Env::from_vars(&[("ISSUER", "…")])`.
    pub fn from_vars(pairs: &[(&str, &str)]) -> Self {
        Self::from_pairs(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())))
    }

    /// The raw value of `var`; an empty value counts as unset.
    pub fn get(&self, var: &str) -> Option<String> {
        let value = match &self.overrides {
            Some(map) => map.get(var).cloned(),
            None => std::env::var(var).ok(),
        };
        value.filter(|v| !v.is_empty())
    }

    /// `var` parsed as `T`, or `default` when unset.
    pub fn parse_or<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|err| ConfigError::new(var, raw, err)),
        }
    }

    pub fn socket_addr(&self, var: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let raw = self.get(var).unwrap_or_else(|| default.to_owned());
        raw.parse()
            .map_err(|err| ConfigError::new(var, raw.clone(), err))
    }

    /// An absolute `http`/`https` URL without query or fragment, kept without a trailing slash so
    /// that paths can be appended and the value compared as a string (an issuer is compared
    /// exactly).
    pub fn base_url(&self, var: &'static str, default: &str) -> Result<Url, ConfigError> {
        let raw = self.get(var).unwrap_or_else(|| default.to_owned());
        parse_base_url(&raw).map_err(|reason| ConfigError::new(var, raw.clone(), reason))
    }

    /// A secret from `var`, or from the file `file_var` names (a docker secret), never both;
    /// `default` when neither is set. An error never shows the secret.
    pub fn secret(
        &self,
        var: &'static str,
        file_var: &'static str,
        default: &str,
    ) -> Result<String, ConfigError> {
        match (self.get(var), self.get(file_var)) {
            (Some(_), Some(path)) => Err(ConfigError::new(
                file_var,
                path,
                format!("set {var} or {file_var}, not both"),
            )),
            (Some(secret), None) => Ok(secret),
            (None, Some(path)) => crate::secret_file::read_secret(std::path::Path::new(&path))
                .map_err(|reason| ConfigError::new(file_var, path, reason)),
            (None, None) => Ok(default.to_owned()),
        }
    }

    /// `ALLOW_INSECURE_HTTP`: `true` lets an `http` URL name a host other than loopback (default
    /// `false`: anything that leaves the machine must be `https`).
    pub fn allow_insecure_http(&self) -> Result<bool, ConfigError> {
        self.parse_or(ALLOW_INSECURE_HTTP, false)
    }

    /// A [`Env::base_url`] that protects what crosses it: `https`, or `http` to a loopback host
    /// only (RFC 8252 §7.3), unless `ALLOW_INSECURE_HTTP=true`.
    pub fn secure_base_url(&self, var: &'static str, default: &str) -> Result<Url, ConfigError> {
        let url = self.base_url(var, default)?;
        self.check_transport(var, &url)?;
        Ok(url)
    }

    /// Refuses an `http` URL off loopback unless `ALLOW_INSECURE_HTTP=true`; the message names
    /// `var` and both ways out.
    pub fn check_transport(&self, var: &'static str, url: &Url) -> Result<(), ConfigError> {
        if url.scheme() == "https" || is_loopback(url) || self.allow_insecure_http()? {
            return Ok(());
        }
        Err(ConfigError::new(
            var,
            url.as_str(),
            format!(
                "clear-text http to a host other than loopback: use https, or set \
                 {ALLOW_INSECURE_HTTP}=true to accept that codes, tokens and secrets cross the \
                 network unprotected"
            ),
        ))
    }

    /// A positive number of milliseconds.
    pub fn millis(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.positive(var, default).map(Duration::from_millis)
    }

    /// A positive whole number (a count, a number of seconds…), or `default` when unset.
    pub fn positive<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialEq + From<u8>,
        T::Err: Display,
    {
        let value = self.parse_or(var, default)?;
        if value == T::from(0) {
            return Err(ConfigError::new(var, "0", "must be at least 1"));
        }
        Ok(value)
    }

    /// A positive number of seconds.
    pub fn seconds(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        self.positive(var, default)
    }
}

/// See [`Env::allow_insecure_http`].
pub const ALLOW_INSECURE_HTTP: &str = "ALLOW_INSECURE_HTTP";

/// The longest JWKS `max-age` the authorization server announces and the resource server honours:
/// whatever a setting or a header says, a retired key stops being trusted within minutes.
pub const MAX_JWKS_MAX_AGE_SECONDS: u64 = 300;

/// `localhost`, 127.0.0.0/8 or `[::1]`: traffic that never leaves the machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_base_url(raw: &str) -> Result<Url, &'static str> {
    let url = Url::parse(raw).map_err(|_| "not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https");
    }
    if url.host().is_none() {
        return Err("the URL has no host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or a fragment");
    }
    if url.path() != "/" {
        return Err("the URL must not have a path");
    }
    Ok(url)
}

/// `url` as a string without the trailing slash `Url` adds to an empty path.
pub fn origin_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let env = Env::from_vars(&[("EMPTY", "")]);
        assert_eq!(env.parse_or("UNSET", 7u64), Ok(7));
        assert_eq!(env.parse_or("EMPTY", 7u64), Ok(7));
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = Env::from_vars(&[("TTL", "five")])
            .seconds("TTL", 5)
            .unwrap_err();
        assert_eq!(err.var, "TTL");
        assert!(err.to_string().contains("TTL"));
        assert!(Env::from_vars(&[("TTL", "0")]).seconds("TTL", 5).is_err());
    }

    #[test]
    fn base_urls_must_be_bare_http_origins() {
        let ok = Env::from_vars(&[("U", "http://localhost:8081")])
            .base_url("U", "http://x")
            .unwrap();
        assert_eq!(origin_string(&ok), "http://localhost:8081");
        for bad in [
            "localhost:8081",
            "ftp://localhost",
            "http://localhost:8081/path",
            "http://localhost:8081/?q=1",
            "http://localhost:8081/#f",
        ] {
            assert!(
                Env::from_vars(&[("U", bad)])
                    .base_url("U", "http://x")
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_secret_comes_from_its_variable_or_its_file() {
        assert_eq!(Env::from_vars(&[]).secret("S", "S_FILE", "d").unwrap(), "d");
        assert_eq!(
            Env::from_vars(&[("S", "v")])
                .secret("S", "S_FILE", "d")
                .unwrap(),
            "v"
        );
        let path = std::env::temp_dir().join(format!("s-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "from-file\n").unwrap();
        let file = path.display().to_string();
        assert_eq!(
            Env::from_vars(&[("S_FILE", &file)])
                .secret("S", "S_FILE", "d")
                .unwrap(),
            "from-file"
        );
        let both = Env::from_vars(&[("S", "v"), ("S_FILE", &file)])
            .secret("S", "S_FILE", "d")
            .unwrap_err();
        assert_eq!(both.var, "S_FILE");
        std::fs::remove_file(&path).unwrap();
        let missing = Env::from_vars(&[("S_FILE", &file)])
            .secret("S", "S_FILE", "d")
            .unwrap_err();
        assert_eq!(missing.var, "S_FILE");
        assert!(!missing.to_string().contains("from-file"));
    }

    #[test]
    fn clear_text_http_is_for_loopback_only() {
        for fine in [
            "https://as.example",
            "http://localhost:8081",
            "http://LOCALHOST:8081",
            "http://127.0.0.1:8081",
            "http://127.9.8.7",
            "http://[::1]:8081",
        ] {
            assert!(
                Env::from_vars(&[("U", fine)])
                    .secure_base_url("U", "http://x")
                    .is_ok(),
                "{fine}"
            );
        }
        for refused in [
            "http://as.example",
            "http://authorization-server:8081",
            "http://10.0.0.1",
            "http://localhost.example.com",
            "http://128.0.0.1",
            "http://[::2]",
        ] {
            let err = Env::from_vars(&[("U", refused)])
                .secure_base_url("U", "http://x")
                .unwrap_err();
            assert_eq!(err.var, "U", "{refused}");
            assert!(err.reason.contains("ALLOW_INSECURE_HTTP=true"), "{err}");
            let allowed = Env::from_vars(&[("U", refused), ("ALLOW_INSECURE_HTTP", "true")]);
            assert!(
                allowed.secure_base_url("U", "http://x").is_ok(),
                "{refused}"
            );
        }
        let err = Env::from_vars(&[("ALLOW_INSECURE_HTTP", "yes")])
            .secure_base_url("U", "http://as.example")
            .unwrap_err();
        assert_eq!(err.var, "ALLOW_INSECURE_HTTP");
    }

    #[test]
    fn millis_must_be_positive() {
        assert_eq!(
            Env::from_vars(&[]).millis("T", 300),
            Ok(Duration::from_millis(300))
        );
        assert!(Env::from_vars(&[("T", "0")]).millis("T", 300).is_err());
        assert!(Env::from_vars(&[("T", "-1")]).millis("T", 300).is_err());
    }

    #[test]
    fn socket_addresses_are_checked() {
        assert!(Env::from_vars(&[("A", "0.0.0.0:8080")])
            .socket_addr("A", "x")
            .is_ok());
        assert!(Env::from_vars(&[("A", "localhost")])
            .socket_addr("A", "x")
            .is_err());
    }
}
