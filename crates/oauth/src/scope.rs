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

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn parses_exactly_the_two_names(raw in "\\PC{0,20}|(current|epoch)_time[ _a-zA-Z]{0,2}") {
                let known = raw == "current_time" || raw == "epoch_time";
                let parsed = raw.parse::<Scope>();
                prop_assert_eq!(parsed.is_ok(), known);
                if let Ok(scope) = parsed {
                    prop_assert_eq!(scope.as_str(), raw.as_str());
                }
            }

            #[test]
            fn every_scope_round_trips(index in 0..Scope::ALL.len()) {
                let scope = Scope::ALL[index];
                prop_assert_eq!(scope.as_str().parse(), Ok(scope));
                prop_assert_eq!(scope.to_string().parse(), Ok(scope));
                let json = serde_json::to_string(&scope)?;
                prop_assert_eq!(json.trim_matches('"'), scope.as_str());
                prop_assert_eq!(serde_json::from_str::<Scope>(&json)?, scope);
            }

            #[test]
            fn the_resource_uri_is_the_base_plus_the_path(
                index in 0..Scope::ALL.len(),
                host in "[a-z]{1,10}(\\.[a-z]{1,5}){0,2}",
                port in proptest::option::of(1u16..=u16::MAX),
                slash in any::<bool>(),
            ) {
                let scope = Scope::ALL[index];
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let base = format!("https://{host}{port}{}", if slash { "/" } else { "" });
                let url = url::Url::parse(&base)?;
                let uri = scope.resource_uri(&url);
                prop_assert!(uri.ends_with(scope.path()));
                prop_assert!(!uri.contains("//epoch_time") && !uri.contains("//current_time"));
                let parsed = url::Url::parse(&uri)?;
                prop_assert_eq!(parsed.path(), scope.path());
            }
        }
    }
}
