//! The registered client as both sides name it: its id, its secret and its one redirect URI.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

/// A client identifier (RFC 6749 §2.2), compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ClientId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl PartialEq<str> for ClientId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ClientId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The client's secret: redacted from every `Debug`, zeroed when dropped, readable only through
/// [`ClientSecret::expose`].
#[derive(Debug, Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<&str> for ClientSecret {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

/// The one registered redirect URI (RFC 6749 §3.1.2): an absolute `http(s)` URL with a host and
/// without query or fragment, kept as written since it is compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Refuses a fragment (RFC 6749 §3.1.2) and a query (it would make "the `Location` without
    /// its query" ambiguous for the client that checks it).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        Self::parse_url(raw).map(|(uri, _)| uri)
    }

    /// [`RedirectUri::parse`], giving the parsed URL as well (to check its transport).
    pub fn parse_url(raw: &str) -> Result<(Self, Url), &'static str> {
        let url = Url::parse(raw).map_err(|_| "not an absolute URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the scheme must be http or https");
        }
        if url.host().is_none() {
            return Err("the URL has no host");
        }
        if url.query().is_some() || url.fragment().is_some() || raw.contains(['?', '#']) {
            return Err("the URL must not have a query or a fragment");
        }
        Ok((Self(raw.to_owned()), url))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RedirectUri {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RedirectUri> for String {
    fn from(value: RedirectUri) -> Self {
        value.0
    }
}

impl PartialEq<str> for RedirectUri {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RedirectUri {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_uri_is_a_bare_absolute_http_url() {
        let uri = RedirectUri::parse("http://localhost:8080/callback").unwrap();
        assert_eq!(uri.as_str(), "http://localhost:8080/callback");
        for bad in [
            "/callback",
            "not a url",
            "ftp://localhost/callback",
            "http://localhost:8080/callback?x=1",
            "http://localhost:8080/callback?",
            "http://localhost:8080/callback#f",
            "http://localhost:8080/callback#",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_never_prints() {
        let secret = ClientSecret::new("s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        assert_eq!(secret.expose(), "s3cr3t-value");
    }
}
