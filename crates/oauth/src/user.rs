use std::fmt;

use serde::{Deserialize, Serialize};

/// A user name as every service accepts it: 1–64 characters of `A-Z a-z 0-9 . _ @ -`.
/// The charset keeps names safe to echo in logs, headers and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(
    value_type = String,
    pattern = "^[A-Za-z0-9._@-]{1,64}$",
    example = "alice"
)]
pub struct UserName(String);

pub const USER_NAME_MAX_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a user name is 1-64 characters of A-Z a-z 0-9 . _ @ -")]
pub struct InvalidUserName;

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, InvalidUserName> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
        if raw.is_empty() || raw.len() > USER_NAME_MAX_LEN || !raw.chars().all(allowed) {
            return Err(InvalidUserName);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserName {
    type Error = InvalidUserName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserName> for String {
    fn from(value: UserName) -> Self {
        value.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_charset() {
        for good in ["alice", "a", "Bob.Smith_2@example-corp", &"x".repeat(64)] {
            assert!(UserName::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let too_long = "x".repeat(65);
        for bad in [
            "", " ", "al ice", "alice\n", "a/b", "é", "a%20", "a\"b", &too_long,
        ] {
            assert_eq!(UserName::parse(bad), Err(InvalidUserName), "{bad:?}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// The documented rule, written without the parser's code.
        fn is_user_name(raw: &str) -> bool {
            (1..=64).contains(&raw.len())
                && raw.bytes().all(|b| {
                    b.is_ascii_uppercase()
                        || b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b".@_-".contains(&b)
                })
        }

        proptest! {
            #[test]
            fn accepts_exactly_the_reference(raw in "\\PC{0,80}") {
                prop_assert_eq!(UserName::parse(&raw).is_ok(), is_user_name(&raw));
            }

            #[test]
            fn accepts_exactly_the_reference_near_the_edges(
                raw in "[A-Za-z0-9._@-]{0,70}|[A-Za-z0-9._@ /%é\"\n-]{0,66}"
            ) {
                prop_assert_eq!(UserName::parse(&raw).is_ok(), is_user_name(&raw));
            }

            #[test]
            fn a_valid_name_round_trips(raw in "[A-Za-z0-9._@-]{1,64}") {
                let name = UserName::parse(&raw);
                prop_assert_eq!(name.as_ref().map(UserName::as_str), Ok(raw.as_str()));
                let json = serde_json::to_string(&name?)?;
                let back: UserName = serde_json::from_str(&json)?;
                prop_assert_eq!(back.as_str(), raw.as_str());
            }

            #[test]
            fn deserializing_applies_the_same_rule(raw in "\\PC{0,70}") {
                let json = serde_json::to_string(&raw)?;
                let parsed = serde_json::from_str::<UserName>(&json);
                prop_assert_eq!(parsed.is_ok(), is_user_name(&raw));
            }
        }
    }
}
