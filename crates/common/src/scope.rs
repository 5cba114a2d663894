use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The only two things that can ever be authorized: one scope per protected endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    CurrentTime,
    EpochTime,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::CurrentTime, Scope::EpochTime];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CurrentTime => "current_time",
            Scope::EpochTime => "epoch_time",
        }
    }

    /// The path of the endpoint this scope grants, on the resource server and on the webapp.
    pub fn path(self) -> &'static str {
        match self {
            Scope::CurrentTime => "/current_time",
            Scope::EpochTime => "/epoch_time",
        }
    }

    /// The RFC 8707 resource indicator of this scope's endpoint, which is also the token's `aud`.
    pub fn resource_uri(self, resource_server_public_url: &url::Url) -> String {
        format!(
            "{}{}",
            resource_server_public_url.as_str().trim_end_matches('/'),
            self.path()
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scope")]
pub struct UnknownScope;

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(UnknownScope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_the_two_scopes() {
        assert_eq!("current_time".parse(), Ok(Scope::CurrentTime));
        assert_eq!("epoch_time".parse(), Ok(Scope::EpochTime));
        for bad in [
            "",
            "Epoch_time",
            "epoch_time ",
            "openid",
            "current_time epoch_time",
        ] {
            assert_eq!(bad.parse::<Scope>(), Err(UnknownScope), "{bad:?}");
        }
    }

    #[test]
    fn resource_uri_joins_without_double_slash() {
        let base = url::Url::parse("http://localhost:8082/").unwrap();
        assert_eq!(
            Scope::EpochTime.resource_uri(&base),
            "http://localhost:8082/epoch_time"
        );
    }
}
