//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 8707 resource indicators): which
//! requests are granted, which are refused by redirect and which can't even be redirected.

use oauth::{RedirectUri, Scope, UserName};
use url::Url;

use crate::client::RegisteredClient;
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::pkce::CodeChallenge;
use crate::store::Grant;

/// `state` is echoed in a URL; anything longer than this is refused rather than echoed.
const MAX_STATE_LEN: usize = 512;

/// A request that passed every rule: the user is always granted, so this becomes a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub grant: Grant,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client or its redirect URI can't be trusted: tell the user, never redirect
    /// (RFC 6749 §4.1.2.1, §3.1.2.4).
    Direct(OAuthError),
    /// Every other error goes back to the client's registered redirect URI.
    ByRedirect {
        error: OAuthError,
        state: Option<String>,
    },
}

/// Applies the rules of the authorization request to `params`.
pub fn authorize(
    params: &Params,
    client: &RegisteredClient,
    resource_server_public_url: &Url,
) -> Result<Granted, Refusal> {
    check_client_and_redirect(params, client)?;
    let state = match params.single("state") {
        Ok(state) if state.is_some_and(|s| s.len() > MAX_STATE_LEN) => {
            return Err(by_redirect(
                OAuthError::invalid_request("state is too long"),
                None,
            ));
        }
        Ok(state) => state.map(str::to_owned),
        Err(repeated) => {
            return Err(by_redirect(
                OAuthError::invalid_request(repeated.to_string()),
                None,
            ));
        }
    };
    let refuse = |error: OAuthError| by_redirect(error, state.clone());
    if let Some(repeated) = params.first_repeated(&["resource"]) {
        return Err(refuse(OAuthError::invalid_request(repeated.to_string())));
    }
    let single = |name: &str| params.single(name).ok().flatten();

    match single("response_type") {
        None => {
            return Err(refuse(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some("code") => {}
        Some(_) => {
            return Err(refuse(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )))
        }
    }
    let scope = parse_scope(single("scope"), client).map_err(&refuse)?;
    let code_challenge =
        parse_code_challenge(single("code_challenge"), single("code_challenge_method"))
            .map_err(&refuse)?;
    let resource = parse_resource(&params.all("resource"), scope, resource_server_public_url)
        .map_err(&refuse)?;
    let user = match single("login_hint") {
        None => {
            return Err(refuse(OAuthError::invalid_request(
                "login_hint (the user) is required",
            )))
        }
        Some(raw) => UserName::parse(raw)
            .map_err(|err| refuse(OAuthError::invalid_request(format!("login_hint: {err}"))))?,
    };

    Ok(Granted {
        grant: Grant {
            client_id: client.id.clone(),
            redirect_uri: client.redirect_uri.clone(),
            user,
            scope,
            resource,
            code_challenge,
        },
        state,
    })
}

fn by_redirect(error: OAuthError, state: Option<String>) -> Refusal {
    Refusal::ByRedirect { error, state }
}

fn check_client_and_redirect(params: &Params, client: &RegisteredClient) -> Result<(), Refusal> {
    let direct = |description: String| Refusal::Direct(OAuthError::invalid_request(description));
    match params.single("client_id") {
        Err(repeated) => return Err(direct(repeated.to_string())),
        Ok(None) => return Err(direct("client_id is required".into())),
        Ok(Some(id)) if client.id != *id => return Err(direct("unknown client_id".into())),
        Ok(Some(_)) => {}
    }
    match params.single("redirect_uri") {
        Err(repeated) => Err(direct(repeated.to_string())),
        Ok(None) => Err(direct("redirect_uri is required".into())),
        // RFC 9700 §2.1: exact string comparison, no normalisation.
        Ok(Some(uri)) if client.redirect_uri != *uri => Err(direct(
            "redirect_uri does not match the client's registered redirect URI".into(),
        )),
        Ok(Some(_)) => Ok(()),
    }
}

fn parse_scope(raw: Option<&str>, client: &RegisteredClient) -> Result<Scope, OAuthError> {
    let invalid = |description: &str| OAuthError::new(ErrorCode::InvalidScope, description);
    let raw = raw.ok_or_else(|| invalid("scope is required: current_time or epoch_time"))?;
    if raw.split(' ').count() != 1 {
        return Err(invalid("exactly one scope may be requested"));
    }
    let scope: Scope = raw
        .parse()
        .map_err(|_| invalid("unknown scope; only current_time and epoch_time exist"))?;
    if !client.may_be_granted(scope) {
        return Err(invalid("this scope is not registered for the client"));
    }
    Ok(scope)
}

fn parse_code_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<CodeChallenge, OAuthError> {
    let challenge = challenge
        .ok_or_else(|| OAuthError::invalid_request("code_challenge is required (PKCE)"))?;
    // A missing method means `plain` (RFC 7636 §4.3), which is refused like an explicit one.
    if method != Some("S256") {
        return Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        ));
    }
    CodeChallenge::parse(challenge).ok_or_else(|| {
        OAuthError::invalid_request("code_challenge must be 43 base64url characters (S256)")
    })
}

/// RFC 8707 §2: when given, `resource` must be exactly one absolute URI without fragment, and ours
/// for the requested scope; when absent it is derived from the scope.
fn parse_resource(
    given: &[&str],
    scope: Scope,
    resource_server_public_url: &Url,
) -> Result<String, OAuthError> {
    let expected = scope.resource_uri(resource_server_public_url);
    let invalid = |description: &str| OAuthError::new(ErrorCode::InvalidTarget, description);
    match given {
        [] => Ok(expected),
        // The one accepted value, an absolute URI without a fragment: only a refusal needs the
        // parse, to say why (a URL parse is ≈ 6,000 instructions of every flow).
        [one] if *one == expected => Ok(expected),
        [one] => {
            let url = Url::parse(one).map_err(|_| invalid("resource must be an absolute URI"))?;
            if url.fragment().is_some() {
                return Err(invalid("resource must not contain a fragment"));
            }
            Err(invalid(
                "resource is not the endpoint of the requested scope",
            ))
        }
        _ => Err(invalid("exactly one resource may be requested")),
    }
}

/// Where the user agent is sent after a successful request (RFC 6749 §4.1.2, RFC 9207 `iss`).
pub fn success_location(
    redirect_uri: &RedirectUri,
    code: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("code", code);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", issuer);
    join_query(redirect_uri, &query.finish())
}

/// Where the user agent is sent with an error (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
pub fn error_location(
    redirect_uri: &RedirectUri,
    error: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("error", error.code.as_str());
    query.append_pair("error_description", &error.description);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", issuer);
    join_query(redirect_uri, &query.finish())
}

/// A registered redirect URI has no query of its own ([`RedirectUri::parse`]).
fn join_query(redirect_uri: &RedirectUri, query: &str) -> String {
    format!("{redirect_uri}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn rs() -> Url {
        Url::parse("http://localhost:8082").unwrap()
    }

    fn valid_pairs() -> Vec<(&'static str, String)> {
        vec![
            ("response_type", "code".into()),
            ("client_id", "1234".into()),
            ("redirect_uri", REDIRECT.into()),
            ("scope", "epoch_time".into()),
            ("state", "xyz".into()),
            ("code_challenge", CHALLENGE.into()),
            ("code_challenge_method", "S256".into()),
            ("login_hint", "alice".into()),
            ("resource", "http://localhost:8082/epoch_time".into()),
        ]
    }

    fn query(pairs: &[(&str, String)]) -> Params<'static> {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            serializer.append_pair(k, v);
        }
        Params::parse(serializer.finish().leak())
    }

    fn with(name: &str, value: &str) -> Params<'static> {
        let mut pairs = valid_pairs();
        pairs.retain(|(k, _)| *k != name);
        pairs.push((Box::leak(name.to_owned().into_boxed_str()), value.into()));
        query(&pairs)
    }

    fn without(name: &str) -> Params<'static> {
        let mut pairs = valid_pairs();
        pairs.retain(|(k, _)| *k != name);
        query(&pairs)
    }

    fn repeated(name: &str) -> Params<'static> {
        let mut pairs = valid_pairs();
        let value = pairs.iter().find(|(k, _)| *k == name).unwrap().1.clone();
        pairs.push((Box::leak(name.to_owned().into_boxed_str()), value));
        query(&pairs)
    }

    fn run(params: &Params) -> Result<Granted, Refusal> {
        authorize(params, &client(), &rs())
    }

    fn redirected(params: &Params) -> (ErrorCode, Option<String>) {
        match run(params) {
            Err(Refusal::ByRedirect { error, state }) => (error.code, state),
            other => panic!("expected a redirected error, got {other:?}"),
        }
    }

    fn direct(params: &Params) -> ErrorCode {
        match run(params) {
            Err(Refusal::Direct(error)) => error.code,
            other => panic!("expected an error without redirect, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_is_granted_with_everything_bound() {
        let granted = run(&query(&valid_pairs())).unwrap();
        assert_eq!(granted.state.as_deref(), Some("xyz"));
        assert_eq!(granted.grant.user.as_str(), "alice");
        assert_eq!(granted.grant.scope, Scope::EpochTime);
        assert_eq!(granted.grant.resource, "http://localhost:8082/epoch_time");
        assert_eq!(granted.grant.redirect_uri, REDIRECT);
        assert_eq!(granted.grant.client_id, "1234");
    }

    #[test]
    fn resource_and_state_are_optional() {
        let granted = run(&without("resource")).unwrap();
        assert_eq!(granted.grant.resource, "http://localhost:8082/epoch_time");
        assert_eq!(run(&without("state")).unwrap().state, None);
    }

    #[test]
    fn unknown_missing_or_repeated_client_is_never_redirected() {
        assert_eq!(
            direct(&with("client_id", "9999")),
            ErrorCode::InvalidRequest
        );
        assert_eq!(direct(&without("client_id")), ErrorCode::InvalidRequest);
        assert_eq!(direct(&repeated("client_id")), ErrorCode::InvalidRequest);
    }

    #[test]
    fn an_unregistered_or_missing_redirect_uri_is_never_redirected() {
        for uri in [
            "http://localhost:8080/callback/",
            "http://localhost:8080/callback?x=1",
            "http://LOCALHOST:8080/callback",
            "http://localhost:8080/Callback",
            "https://evil.example/callback",
            "not a uri",
        ] {
            assert_eq!(
                direct(&with("redirect_uri", uri)),
                ErrorCode::InvalidRequest,
                "{uri}"
            );
        }
        assert_eq!(direct(&without("redirect_uri")), ErrorCode::InvalidRequest);
        assert_eq!(direct(&repeated("redirect_uri")), ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_repeated_parameter_is_invalid_request_with_state_echoed() {
        for name in ["response_type", "scope", "code_challenge", "login_hint"] {
            assert_eq!(
                redirected(&repeated(name)),
                (ErrorCode::InvalidRequest, Some("xyz".into())),
                "{name}"
            );
        }
        // a repeated state can't be echoed
        assert_eq!(
            redirected(&repeated("state")),
            (ErrorCode::InvalidRequest, None)
        );
    }

    #[test]
    fn response_type_must_be_code() {
        assert_eq!(
            redirected(&without("response_type")).0,
            ErrorCode::InvalidRequest
        );
        for bad in ["token", "code token", "CODE"] {
            assert_eq!(
                redirected(&with("response_type", bad)).0,
                ErrorCode::UnsupportedResponseType
            );
        }
    }

    #[test]
    fn exactly_one_known_registered_scope() {
        for bad in ["current_time epoch_time", "openid", "epoch_time ", "admin"] {
            assert_eq!(
                redirected(&with("scope", bad)).0,
                ErrorCode::InvalidScope,
                "{bad}"
            );
        }
        assert_eq!(redirected(&without("scope")).0, ErrorCode::InvalidScope);
        let narrow = RegisteredClient {
            scopes: vec![Scope::CurrentTime],
            ..client()
        };
        let refused = authorize(&without("resource"), &narrow, &rs());
        assert!(matches!(
            refused,
            Err(Refusal::ByRedirect { error, .. }) if error.code == ErrorCode::InvalidScope
        ));
    }

    #[test]
    fn pkce_is_required_and_s256_only() {
        assert_eq!(
            redirected(&without("code_challenge")).0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected(&without("code_challenge_method")).0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected(&with("code_challenge_method", "plain")).0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected(&with("code_challenge_method", "s256")).0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected(&with("code_challenge", "short")).0,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn a_wrong_resource_is_invalid_target() {
        for bad in [
            "http://localhost:8082/current_time",
            "http://localhost:8082/epoch_time#frag",
            "http://localhost:8082/",
            "/epoch_time",
            "http://evil.example/epoch_time",
        ] {
            assert_eq!(
                redirected(&with("resource", bad)).0,
                ErrorCode::InvalidTarget,
                "{bad}"
            );
        }
        assert_eq!(
            redirected(&repeated("resource")).0,
            ErrorCode::InvalidTarget
        );
    }

    #[test]
    fn a_refused_resource_is_told_why() {
        let url = Url::parse("http://localhost:8082").unwrap();
        for (given, why) in [
            ("/epoch_time", "resource must be an absolute URI"),
            (
                "http://localhost:8082/epoch_time#frag",
                "resource must not contain a fragment",
            ),
            (
                "http://localhost:8082/current_time",
                "resource is not the endpoint of the requested scope",
            ),
        ] {
            let error = parse_resource(&[given], Scope::EpochTime, &url).unwrap_err();
            assert_eq!(error.description, why, "{given}");
        }
        assert_eq!(
            parse_resource(
                &["http://localhost:8082/epoch_time"],
                Scope::EpochTime,
                &url
            ),
            Ok("http://localhost:8082/epoch_time".to_owned())
        );
    }

    #[test]
    fn the_user_comes_from_a_valid_login_hint() {
        assert_eq!(
            redirected(&without("login_hint")).0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected(&with("login_hint", "bad user")).0,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn locations_carry_state_and_iss_encoded() {
        let redirect = RedirectUri::parse(REDIRECT).unwrap();
        let ok = success_location(&redirect, "c0de", Some("a b&c"), "http://localhost:8081");
        assert_eq!(
            ok,
            "http://localhost:8080/callback?code=c0de&state=a+b%26c&iss=http%3A%2F%2Flocalhost%3A8081"
        );
        let error = OAuthError::new(ErrorCode::InvalidScope, "no");
        let err = error_location(&redirect, &error, None, "http://i");
        assert_eq!(
            err,
            "http://localhost:8080/callback?error=invalid_scope&error_description=no&iss=http%3A%2F%2Fi"
        );
    }
}
