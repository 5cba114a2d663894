use std::fmt;

use serde::{Deserialize, Serialize};

/// A user name as every service accepts it: 1–64 characters of `A-Z a-z 0-9 . _ @ -`.
/// The charset keeps names safe to echo in logs, headers and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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
}
