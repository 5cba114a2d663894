use serde::{Deserialize, Serialize};

use crate::{ClientId, Scope, UserName};

/// The `typ` header of an RFC 9068 access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The claims of an RFC 9068 JWT access token: the contract between the authorization server, which
/// signs them, and the resource server, which checks every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user the token was issued for.
    pub sub: UserName,
    /// The one endpoint's resource URI (RFC 8707), e.g. `http://localhost:8082/epoch_time`.
    pub aud: String,
    pub client_id: ClientId,
    /// Exactly one scope, naming the same endpoint as `aud`: a token with any other `scope`
    /// (several, unknown) does not even parse.
    pub scope: Scope,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

/// True when `typ` is one of the two spellings RFC 9068 §4 allows (compared case-insensitively).
pub fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_is_compared_case_insensitively_and_nothing_else_passes() {
        for good in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/AT+JWT",
        ] {
            assert!(is_access_token_type(good), "{good}");
        }
        for bad in ["JWT", "jwt", "", "at+jwt ", "application/jwt"] {
            assert!(!is_access_token_type(bad), "{bad}");
        }
    }
}
