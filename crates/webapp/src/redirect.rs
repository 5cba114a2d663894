//! The checks of a redirect from the authorization server (RFC 6749 §4.1.2, RFC 9207 `iss`):
//! pure functions, used by the flow on the `Location` it reads and by the `/callback` route.

use oauth::ErrorCode;
use oauth2::AuthorizationCode;

/// Why a redirect from the authorization server is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("the redirect does not go to the registered redirect URI")]
    NotRedirectUri,
    #[error("the redirect repeats the {0} parameter")]
    Repeated(&'static str),
    #[error("the redirect's state is missing or is not ours: possible CSRF")]
    StateMismatch,
    /// No flow of ours is waiting for this redirect.
    #[error("unknown or expired state")]
    UnknownState,
    #[error("the redirect has no iss parameter (RFC 9207)")]
    MissingIssuer,
    #[error("the redirect's iss is not our authorization server (RFC 9207)")]
    WrongIssuer,
    #[error("the redirect carries neither a code nor an error")]
    MissingCode,
    /// The authorization server answered with an error (RFC 6749 §4.1.2.1).
    #[error("the authorization server refused: {error}")]
    Refused {
        /// A code none of our services sends reads as `server_error`.
        error: ErrorCode,
        description: Option<String>,
    },
}

/// Checks the `Location` of the authorization server's answer to our own authorization request:
/// it must be the registered redirect URI (compared exactly, without the query) and its query must
/// pass [`check_redirect_query`] with our `state`.
pub fn check_location(
    location: &str,
    redirect_uri: &str,
    issuer: &str,
    state: &str,
) -> Result<AuthorizationCode, RedirectError> {
    if location.contains('#') {
        return Err(RedirectError::NotRedirectUri);
    }
    let (target, query) = location.split_once('?').unwrap_or((location, ""));
    if target != redirect_uri {
        return Err(RedirectError::NotRedirectUri);
    }
    check_redirect_query(query, issuer, Some(state))
}

/// Checks the query of a redirect to our redirect URI, in this order:
/// 1. none of `state`, `iss`, `code`, `error`, `error_description` is repeated;
/// 2. with a `pending_state` (a flow of ours waiting for this redirect), `state` is exactly it;
///    without one (`/callback`), nothing may ever be redeemed: anything but an `error` is
///    [`RedirectError::UnknownState`];
/// 3. `iss` is present and exactly `issuer` (RFC 9207; our authorization server always sends it);
/// 4. an `error` is reported as [`RedirectError::Refused`];
/// 5. otherwise the non-empty `code` is returned.
pub fn check_redirect_query(
    query: &str,
    issuer: &str,
    pending_state: Option<&str>,
) -> Result<AuthorizationCode, RedirectError> {
    let params = RedirectParams::parse(query)?;
    match pending_state {
        Some(expected) if params.state.as_deref() != Some(expected) => {
            return Err(RedirectError::StateMismatch)
        }
        None if params.error.is_none() => return Err(RedirectError::UnknownState),
        _ => {}
    }
    match params.iss.as_deref() {
        None => return Err(RedirectError::MissingIssuer),
        Some(iss) if iss != issuer => return Err(RedirectError::WrongIssuer),
        Some(_) => {}
    }
    if let Some(error) = params.error {
        // The description is cleaned here: it comes from a query string anyone can send to
        // /callback, and ends up in log lines and bodies.
        return Err(RedirectError::Refused {
            error: error.parse().unwrap_or(ErrorCode::ServerError),
            description: params
                .error_description
                .map(|description| crate::error::clean(&description, 256)),
        });
    }
    match params.code {
        Some(code) if !code.is_empty() => Ok(AuthorizationCode::new(code)),
        _ => Err(RedirectError::MissingCode),
    }
}

#[derive(Default)]
struct RedirectParams {
    state: Option<String>,
    iss: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl RedirectParams {
    fn parse(query: &str) -> Result<Self, RedirectError> {
        let mut params = Self::default();
        for (name, value) in oauth::form::parse(query) {
            let (name, slot) = match name.as_ref() {
                "state" => ("state", &mut params.state),
                "iss" => ("iss", &mut params.iss),
                "code" => ("code", &mut params.code),
                "error" => ("error", &mut params.error),
                "error_description" => ("error_description", &mut params.error_description),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(RedirectError::Repeated(name));
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIRECT: &str = "http://localhost:8080/callback";
    const ISSUER: &str = "http://localhost:8081";
    const STATE: &str = "s-123";

    fn check(location: &str) -> Result<String, RedirectError> {
        check_location(location, REDIRECT, ISSUER, STATE).map(|code| code.secret().clone())
    }

    fn iss() -> String {
        format!(
            "iss={}",
            url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect::<String>()
        )
    }

    #[test]
    fn a_good_redirect_yields_the_code() {
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state={STATE}&{}", iss())),
            Ok("abc".to_owned())
        );
        // Unknown parameters are ignored, order does not matter.
        assert_eq!(
            check(&format!(
                "{REDIRECT}?{}&x=1&state={STATE}&code=a%2Bb",
                iss()
            )),
            Ok("a+b".to_owned())
        );
    }

    #[test]
    fn wrong_missing_or_repeated_state_is_refused() {
        let iss = iss();
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state=other&{iss}")),
            Err(RedirectError::StateMismatch)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&{iss}")),
            Err(RedirectError::StateMismatch)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state=&{iss}")),
            Err(RedirectError::StateMismatch)
        );
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&state={STATE}&{iss}"
            )),
            Err(RedirectError::Repeated("state"))
        );
    }

    #[test]
    fn wrong_or_missing_iss_is_refused() {
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&iss=http%3A%2F%2Fevil.example"
            )),
            Err(RedirectError::WrongIssuer)
        );
        // Exact comparison: a trailing slash is another issuer.
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&iss=http%3A%2F%2Flocalhost%3A8081%2F"
            )),
            Err(RedirectError::WrongIssuer)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=abc&state={STATE}")),
            Err(RedirectError::MissingIssuer)
        );
        assert_eq!(
            check(&format!(
                "{REDIRECT}?code=abc&state={STATE}&{}&{}",
                iss(),
                iss()
            )),
            Err(RedirectError::Repeated("iss"))
        );
    }

    #[test]
    fn a_location_elsewhere_is_refused() {
        let query = format!("code=abc&state={STATE}&{}", iss());
        for target in [
            "http://evil.example/callback",
            "http://localhost:8080/callback/",
            "http://localhost:8080/callbackx",
            "http://localhost:8080/other",
            "https://localhost:8080/callback",
            "/callback",
        ] {
            assert_eq!(
                check(&format!("{target}?{query}")),
                Err(RedirectError::NotRedirectUri),
                "{target}"
            );
        }
        assert_eq!(
            check(&format!("{REDIRECT}?{query}#frag")),
            Err(RedirectError::NotRedirectUri)
        );
    }

    #[test]
    fn an_error_from_the_server_is_passed_through() {
        assert_eq!(
            check(&format!(
                "{REDIRECT}?error=invalid_scope&error_description=no+such+scope&state={STATE}&{}",
                iss()
            )),
            Err(RedirectError::Refused {
                error: ErrorCode::InvalidScope,
                description: Some("no such scope".to_owned()),
            })
        );
        assert_eq!(
            check(&format!(
                "{REDIRECT}?error=access_denied&state={STATE}&{}",
                iss()
            )),
            Err(RedirectError::Refused {
                error: ErrorCode::AccessDenied,
                description: None,
            })
        );
        // An error with somebody else's state is not trusted as ours.
        assert_eq!(
            check(&format!(
                "{REDIRECT}?error=access_denied&state=other&{}",
                iss()
            )),
            Err(RedirectError::StateMismatch)
        );
    }

    #[test]
    fn a_missing_or_empty_code_is_refused() {
        assert_eq!(
            check(&format!("{REDIRECT}?state={STATE}&{}", iss())),
            Err(RedirectError::MissingCode)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=&state={STATE}&{}", iss())),
            Err(RedirectError::MissingCode)
        );
        assert_eq!(
            check(&format!("{REDIRECT}?code=a&code=b&state={STATE}&{}", iss())),
            Err(RedirectError::Repeated("code"))
        );
    }

    #[test]
    fn the_callback_never_yields_a_code() {
        let iss = iss();
        assert_eq!(
            check_redirect_query(&format!("code=abc&state=anything&{iss}"), ISSUER, None)
                .map(|c| c.secret().clone()),
            Err(RedirectError::UnknownState)
        );
        assert_eq!(
            check_redirect_query("code=abc&state=x", ISSUER, None).map(|c| c.secret().clone()),
            Err(RedirectError::UnknownState)
        );
        assert_eq!(
            check_redirect_query("", ISSUER, None).map(|c| c.secret().clone()),
            Err(RedirectError::UnknownState)
        );
        assert_eq!(
            check_redirect_query("error=access_denied&state=x", ISSUER, None)
                .map(|c| c.secret().clone()),
            Err(RedirectError::MissingIssuer)
        );
        assert_eq!(
            check_redirect_query(&format!("error=access_denied&state=x&{iss}"), ISSUER, None)
                .map(|c| c.secret().clone()),
            Err(RedirectError::Refused {
                error: ErrorCode::AccessDenied,
                description: None,
            })
        );
    }
}
