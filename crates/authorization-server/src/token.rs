//! The token request (RFC 6749 §4.1.3, §2.3.1, RFC 7636 §4.5): client authentication, the request's
//! parameters, the rules a redeemed code must meet, and the access token's claims (RFC 9068).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use oauth::{AccessTokenClaims, ClientId};

use crate::client::RegisteredClient;
use crate::error::{AuthMethod, ErrorCode, OAuthError};
use crate::params::Params;
use crate::pkce::CodeVerifier;
use crate::store::Grant;

/// The client's credentials as presented, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCredentials {
    pub method: AuthMethod,
    pub client_id: Option<String>,
    secret: Option<String>,
}

/// Reads `client_secret_basic` (the `Authorization` header) or `client_secret_post` (the form).
/// Using both at once is `invalid_request` (RFC 6749 §2.3.1).
pub fn presented_credentials(
    authorization: Option<&str>,
    params: &Params,
) -> Result<PresentedCredentials, OAuthError> {
    let form_id = params
        .single("client_id")
        .map_err(|r| OAuthError::invalid_request(r.to_string()))?;
    let form_secret = params
        .single("client_secret")
        .map_err(|r| OAuthError::invalid_request(r.to_string()))?;
    let Some(authorization) = authorization else {
        return Ok(PresentedCredentials {
            method: if form_secret.is_some() {
                AuthMethod::Post
            } else {
                AuthMethod::None
            },
            client_id: form_id.map(str::to_owned),
            secret: form_secret.map(str::to_owned),
        });
    };
    if form_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method: the Authorization header or client_secret",
        ));
    }
    let (id, secret) = parse_basic(authorization)?;
    if form_id.is_some_and(|form_id| form_id != id) {
        return Err(OAuthError::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    Ok(PresentedCredentials {
        method: AuthMethod::Basic,
        client_id: Some(id),
        secret: Some(secret),
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(authorization: &str) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_request("malformed Basic Authorization header");
    let (scheme, encoded) = authorization.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "client authentication uses the Basic scheme",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |part: &str| oauth::form::decode(part).into_owned();
    Ok((unescape(id), unescape(secret)))
}

/// Checks the presented credentials against the registered client.
pub fn authenticate(
    credentials: &PresentedCredentials,
    client: &RegisteredClient,
) -> Result<(), OAuthError> {
    let invalid = |description: &str| OAuthError::new(ErrorCode::InvalidClient, description);
    match (&credentials.client_id, &credentials.secret) {
        (Some(id), Some(secret)) if client.authenticate(id, secret) => Ok(()),
        (Some(_), Some(_)) => Err(invalid("client authentication failed")),
        _ => Err(invalid("client authentication is required")),
    }
}

/// A well-formed authorization-code token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub code: String,
    pub redirect_uri: String,
    pub code_verifier: CodeVerifier,
    pub resource: Option<String>,
}

/// The request's own rules, checked before the code is looked at (a malformed request must not
/// spend a code).
pub fn parse_token_request(params: &Params) -> Result<TokenRequest, OAuthError> {
    if let Some(repeated) = params.first_repeated(&[]) {
        return Err(OAuthError::invalid_request(repeated.to_string()));
    }
    let single = |name: &str| params.single(name).ok().flatten();
    match single("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("authorization_code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "only the authorization_code grant is supported",
            ))
        }
    }
    let required = |name: &'static str| {
        single(name).ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    };
    let code = required("code")?.to_owned();
    let redirect_uri = required("redirect_uri")?.to_owned();
    let code_verifier = CodeVerifier::parse(required("code_verifier")?).ok_or_else(|| {
        OAuthError::invalid_request(
            "code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~",
        )
    })?;
    Ok(TokenRequest {
        code,
        redirect_uri,
        code_verifier,
        resource: single("resource").map(str::to_owned),
    })
}

/// The rules a redeemed code must meet against the request that presents it (RFC 6749 §4.1.3,
/// RFC 7636 §4.6, RFC 8707 §2.2).
pub fn check_grant(
    grant: &Grant,
    client_id: &ClientId,
    request: &TokenRequest,
) -> Result<(), OAuthError> {
    if grant.client_id != *client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if grant.redirect_uri != *request.redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !grant.code_challenge.is_satisfied_by(&request.code_verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if request
        .resource
        .as_ref()
        .is_some_and(|r| *r != grant.resource)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the authorization request's",
        ));
    }
    Ok(())
}

/// The RFC 9068 claims of the access token for `grant`, issued at `now` (seconds since the epoch).
pub fn claims_for(grant: &Grant, issuer: &str, now: Duration, ttl: Duration) -> AccessTokenClaims {
    let iat = now.as_secs();
    AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: grant.user.clone(),
        aud: grant.resource.clone(),
        client_id: grant.client_id.clone(),
        scope: grant.scope,
        iat,
        exp: iat + ttl.as_secs(),
        jti: uuid::Uuid::new_v4().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use oauth::{RedirectUri, Scope, UserName};

    use super::*;
    use crate::pkce::CodeChallenge;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "http://localhost:8080/callback";

    fn client() -> RegisteredClient {
        RegisteredClient {
            id: "1234".into(),
            secret: "qwerty".into(),
            redirect_uri: RedirectUri::parse(REDIRECT).unwrap(),
            scopes: Scope::ALL.to_vec(),
        }
    }

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    fn form(body: &str) -> Params<'_> {
        Params::parse(body)
    }

    fn grant() -> Grant {
        Grant {
            client_id: "1234".into(),
            redirect_uri: RedirectUri::parse(REDIRECT).unwrap(),
            user: UserName::parse("alice").unwrap(),
            scope: Scope::EpochTime,
            resource: "http://localhost:8082/epoch_time".into(),
            code_challenge: CodeChallenge::parse(CHALLENGE).unwrap(),
        }
    }

    fn request(verifier: &str, redirect_uri: &str) -> TokenRequest {
        TokenRequest {
            code: "c".into(),
            redirect_uri: redirect_uri.into(),
            code_verifier: CodeVerifier::parse(verifier).unwrap(),
            resource: None,
        }
    }

    #[test]
    fn basic_credentials_authenticate() {
        let creds = presented_credentials(Some(&basic("1234:qwerty")), &form("")).unwrap();
        assert_eq!(creds.method, AuthMethod::Basic);
        assert_eq!(authenticate(&creds, &client()), Ok(()));
    }

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        let odd = RegisteredClient {
            id: "id:1".into(),
            secret: "p@ss w%rd:+".into(),
            ..client()
        };
        let header = basic("id%3A1:p%40ss+w%25rd%3A%2B");
        let creds = presented_credentials(Some(&header), &form("")).unwrap();
        assert_eq!(authenticate(&creds, &odd), Ok(()));
    }

    #[test]
    fn post_credentials_authenticate() {
        let creds =
            presented_credentials(None, &form("client_id=1234&client_secret=qwerty")).unwrap();
        assert_eq!(creds.method, AuthMethod::Post);
        assert_eq!(authenticate(&creds, &client()), Ok(()));
    }

    #[test]
    fn wrong_or_missing_credentials_are_invalid_client() {
        for (header, body) in [
            (Some(basic("1234:wrong")), ""),
            (Some(basic("9999:qwerty")), ""),
            (Some(basic("1234:")), ""),
            // each part is decoded whole: a raw `&` does not end it
            (Some(basic("1234:qwerty&junk")), ""),
            (Some(basic("1234&junk:qwerty")), ""),
            (None, "client_id=1234&client_secret=wrong"),
            (None, "client_id=1234"),
            (None, ""),
        ] {
            let creds = presented_credentials(header.as_deref(), &form(body)).unwrap();
            let err = authenticate(&creds, &client()).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidClient, "{header:?} {body}");
        }
    }

    #[test]
    fn both_methods_at_once_is_invalid_request() {
        let err = presented_credentials(Some(&basic("1234:qwerty")), &form("client_secret=qwerty"))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_malformed_authorization_header_is_invalid_request() {
        for header in ["Basic", "Basic !!!", &basic("no-colon"), "Bearer abc"] {
            let err = presented_credentials(Some(header), &form("")).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{header}");
        }
        let mismatched = presented_credentials(Some(&basic("1234:qwerty")), &form("client_id=9"));
        assert_eq!(mismatched.unwrap_err().code, ErrorCode::InvalidRequest);
    }

    fn token_form(overrides: &[(&str, Option<&str>)]) -> Params<'static> {
        let mut pairs = vec![
            ("grant_type", Some("authorization_code")),
            ("code", Some("abc")),
            ("redirect_uri", Some(REDIRECT)),
            ("code_verifier", Some(VERIFIER)),
        ];
        for (name, value) in overrides {
            pairs.retain(|(k, _)| k != name);
            pairs.push((name, *value));
        }
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            if let Some(v) = v {
                serializer.append_pair(k, v);
            }
        }
        Params::parse(serializer.finish().leak())
    }

    #[test]
    fn a_well_formed_request_parses() {
        let request = parse_token_request(&token_form(&[])).unwrap();
        assert_eq!(request.code, "abc");
        assert_eq!(request.redirect_uri, REDIRECT);
    }

    #[test]
    fn grant_type_must_be_authorization_code() {
        let missing = parse_token_request(&token_form(&[("grant_type", None)]));
        assert_eq!(missing.unwrap_err().code, ErrorCode::InvalidRequest);
        for other in [
            "password",
            "client_credentials",
            "implicit",
            "refresh_token",
        ] {
            let err = parse_token_request(&token_form(&[("grant_type", Some(other))]));
            assert_eq!(
                err.unwrap_err().code,
                ErrorCode::UnsupportedGrantType,
                "{other}"
            );
        }
    }

    #[test]
    fn missing_parameters_are_invalid_request() {
        for name in ["code", "redirect_uri", "code_verifier"] {
            let err = parse_token_request(&token_form(&[(name, None)])).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{name}");
        }
    }

    #[test]
    fn a_malformed_verifier_is_invalid_request() {
        for bad in ["short", &"a".repeat(129), &format!("{}!", "a".repeat(43))] {
            let err = parse_token_request(&token_form(&[("code_verifier", Some(bad))]));
            assert_eq!(err.unwrap_err().code, ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn a_repeated_parameter_is_invalid_request() {
        let raw = format!(
            "grant_type=authorization_code&code=a&code=b&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
        );
        let params = Params::parse(&raw);
        assert_eq!(
            parse_token_request(&params).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn the_grant_must_match_client_redirect_and_verifier() {
        assert_eq!(
            check_grant(&grant(), &"1234".into(), &request(VERIFIER, REDIRECT)),
            Ok(())
        );
        let wrong_client = check_grant(&grant(), &"9999".into(), &request(VERIFIER, REDIRECT));
        assert_eq!(wrong_client.unwrap_err().code, ErrorCode::InvalidGrant);
        let other_redirect = check_grant(
            &grant(),
            &"1234".into(),
            &request(VERIFIER, "http://localhost:8080/other"),
        );
        assert_eq!(other_redirect.unwrap_err().code, ErrorCode::InvalidGrant);
        let wrong_verifier = check_grant(
            &grant(),
            &"1234".into(),
            &request(&"a".repeat(43), REDIRECT),
        );
        assert_eq!(wrong_verifier.unwrap_err().code, ErrorCode::InvalidGrant);
        let mut other_resource = request(VERIFIER, REDIRECT);
        other_resource.resource = Some("http://localhost:8082/current_time".into());
        let err = check_grant(&grant(), &"1234".into(), &other_resource).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn claims_are_rfc9068_and_live_the_ttl() {
        let claims = claims_for(
            &grant(),
            "http://localhost:8081",
            Duration::from_millis(1_700_000_000_900),
            Duration::from_secs(5),
        );
        assert_eq!(claims.iss, "http://localhost:8081");
        assert_eq!(claims.sub.as_str(), "alice");
        assert_eq!(claims.aud, "http://localhost:8082/epoch_time");
        assert_eq!(claims.client_id, "1234");
        assert_eq!(claims.scope, Scope::EpochTime);
        assert_eq!((claims.iat, claims.exp), (1_700_000_000, 1_700_000_005));
        assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
    }
}
