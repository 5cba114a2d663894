//! What a protected request must carry (RFC 6750 §2): the bearer token, in exactly one
//! `Authorization` header and nowhere else, and exactly one valid `user`.
//!
//! Query parameters other than `user` and `access_token` are ignored (as RFC 6749 §3.1 asks of
//! unrecognised parameters); cache busters and tracing parameters then do no harm.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use oauth::UserName;

use crate::error::Error;

/// The credentials and the user of a protected request. `token` is a secret: never log it.
pub struct Credentials {
    pub token: String,
    pub user: UserName,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &"[redacted]")
            .field("user", &self.user)
            .finish()
    }
}

/// Checks, in this order: no token in the query string, exactly one well-formed
/// `Authorization: Bearer` header (none at all, or another scheme such as `Basic`, is
/// [`Error::MissingToken`]), exactly one valid `user`.
pub fn credentials(headers: &HeaderMap, query: Option<&str>) -> Result<Credentials, Error> {
    let mut users = Vec::new();
    let mut token_in_query = false;
    for (name, value) in oauth::form::parse(query.unwrap_or_default()) {
        match name.as_ref() {
            "access_token" => token_in_query = true,
            "user" => users.push(value),
            _ => {}
        }
    }
    if token_in_query {
        return Err(Error::InvalidRequest(
            "access tokens are accepted only in the Authorization header, not in the query string",
        ));
    }
    let token = bearer_token(headers)?;
    let user = match users.as_slice() {
        [] => return Err(Error::InvalidRequest("the user parameter is required")),
        [user] => UserName::parse(user).map_err(|_| {
            Error::InvalidRequest("a user name is 1-64 characters of A-Z a-z 0-9 . _ @ -")
        })?,
        _ => return Err(Error::InvalidRequest("the user parameter is repeated")),
    };
    Ok(Credentials {
        token: token.to_owned(),
        user,
    })
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(Error::MissingToken),
        (Some(value), None) => value,
        (Some(_), Some(_)) => {
            return Err(Error::InvalidRequest("more than one Authorization header"))
        }
    };
    let value = value
        .to_str()
        .map_err(|_| Error::InvalidRequest("the Authorization header is malformed"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // RFC 6750 §3.1: credentials of an unsupported scheme are no bearer token at all, answered
    // like a request without any (401, a bare challenge, no error code).
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(Error::MissingToken);
    }
    let token = token.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(Error::InvalidRequest("the bearer token is malformed"));
    }
    Ok(token)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)])
}

/// b64token's characters by byte: one lookup a byte of a ≈ 400-byte token, where the chain of
/// tests cost ≈ 15 instructions a byte (docs/performance.md).
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        byte += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn takes_one_bearer_token_and_one_user() {
        let got = credentials(&headers(&["Bearer a.b.c"]), Some("user=alice&x=1")).unwrap();
        assert_eq!(got.token, "a.b.c");
        assert_eq!(got.user.as_str(), "alice");
        let got = credentials(&headers(&["bearer  a-b_c~+/=="]), Some("user=a%40b")).unwrap();
        assert_eq!(got.token, "a-b_c~+/==");
        assert_eq!(got.user.as_str(), "a@b");
        assert!(!format!("{got:?}").contains("a-b_c"));
    }

    #[test]
    fn no_authorization_header_is_missing_credentials() {
        assert_eq!(
            credentials(&headers(&[]), Some("user=alice")).unwrap_err(),
            Error::MissingToken
        );
        // checked before the user
        assert_eq!(
            credentials(&headers(&[]), None).unwrap_err(),
            Error::MissingToken
        );
    }

    #[test]
    fn another_scheme_is_no_token_at_all() {
        for auth in ["Basic YTpi", "Bearera.b.c", "", "DPoP a.b.c"] {
            assert_eq!(
                credentials(&headers(&[auth]), Some("user=alice")).unwrap_err(),
                Error::MissingToken,
                "{auth:?}"
            );
        }
    }

    #[test]
    fn malformed_credentials_are_invalid_requests() {
        let cases: &[(&[&'static str], &str)] = &[
            (&["Bearer a.b.c"], "access_token=a.b.c&user=alice"),
            (&[], "access_token=&user=alice"),
            (&["Bearer a.b.c", "Bearer a.b.c"], "user=alice"),
            (&["Bearer"], "user=alice"),
            (&["Bearer "], "user=alice"),
            (&["Bearer a b"], "user=alice"),
            (&["Bearer a\"b"], "user=alice"),
            (&["Bearer =="], "user=alice"),
        ];
        for (auth, query) in cases {
            let err = credentials(&headers(auth), Some(query)).unwrap_err();
            assert!(
                matches!(err, Error::InvalidRequest(_)),
                "{auth:?} {query}: {err:?}"
            );
        }
    }

    #[test]
    fn the_table_holds_exactly_the_b64token_characters() {
        let allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
        for byte in 0..=u8::MAX {
            assert_eq!(
                B64TOKEN[usize::from(byte)],
                allowed.as_bytes().contains(&byte),
                "{byte:#04x}"
            );
        }
        assert!(is_b64token("a-b_c~+/=="));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token("\u{e9}"));
    }

    #[test]
    fn the_user_is_required_once_and_valid() {
        for query in [
            None,
            Some(""),
            Some("user="),
            Some("user=al%20ice"),
            Some("user=a&user=a"),
            Some("User=alice"),
        ] {
            let err = credentials(&headers(&["Bearer t"]), query).unwrap_err();
            assert!(
                matches!(err, Error::InvalidRequest(_)),
                "{query:?}: {err:?}"
            );
        }
    }
}
