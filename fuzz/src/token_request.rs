//! The `/token` request: the `Authorization: Basic` header and the form (`presented_credentials`,
//! `authenticate`, `parse_token_request`), on every input twice:
//! 1. raw: the text before the first newline is the `Authorization` header value, the rest the
//!    form body; no newline means no header (seeds: `fuzz/corpus/token_request/`);
//! 2. structured: arbitrary client id and secret encoded as RFC 6749 §2.3.1 says (Basic or in the
//!    form), which must decode back to exactly what was encoded and authenticate exactly that
//!    client.

use arbitrary::{Arbitrary, Unstructured};
use authorization_server::fuzzing::{
    authenticate, parse_token_request, presented_credentials, AuthMethod, CodeVerifier, ErrorCode,
    Params,
};
use authorization_server::RegisteredClient;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use oauth::Scope;

fn client(id: &str, secret: &str) -> RegisteredClient {
    RegisteredClient {
        id: id.into(),
        secret: secret.into(),
        redirect_uri: oauth::RedirectUri::parse("http://localhost:8080/callback")
            .expect("a valid redirect URI"),
        scopes: Scope::ALL.to_vec(),
    }
}

/// Reference predicate for a code verifier (RFC 7636 §4.1), independent of `CodeVerifier::parse`.
fn is_verifier(raw: &str) -> bool {
    (43..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn check_credentials(authorization: Option<&str>, params: &Params) {
    let form_id = params.single("client_id");
    let form_secret = params.single("client_secret");
    let registered = client("1234", "qwerty");
    match presented_credentials(authorization, params) {
        Ok(credentials) => {
            let form_id = form_id.expect("a repeated client_id is refused");
            let form_secret = form_secret.expect("a repeated client_secret is refused");
            match authorization {
                None => {
                    let expected = if form_secret.is_some() {
                        AuthMethod::Post
                    } else {
                        AuthMethod::None
                    };
                    assert_eq!(credentials.method, expected);
                    assert_eq!(credentials.client_id.as_deref(), form_id);
                }
                Some(header) => {
                    assert_eq!(credentials.method, AuthMethod::Basic);
                    assert!(form_secret.is_none(), "two authentication methods accepted");
                    let scheme = header.split_once(' ').map(|(scheme, _)| scheme);
                    assert!(scheme.is_some_and(|s| s.eq_ignore_ascii_case("basic")));
                    let id = credentials.client_id.as_deref();
                    assert!(id.is_some());
                    assert!(
                        form_id.is_none() || form_id == id,
                        "client_id mismatch accepted"
                    );
                }
            }
            match authenticate(&credentials, &registered) {
                Ok(()) => assert_eq!(credentials.client_id.as_deref(), Some("1234")),
                Err(err) => assert_eq!(err.code, ErrorCode::InvalidClient),
            }
        }
        Err(err) => assert_eq!(err.code, ErrorCode::InvalidRequest),
    }
}

fn check_token_request(params: &Params) {
    let single = |name: &str| params.single(name).ok().flatten();
    match parse_token_request(params) {
        Ok(request) => {
            assert_eq!(params.first_repeated(&[]), None);
            assert_eq!(single("grant_type"), Some("authorization_code"));
            assert_eq!(single("code"), Some(request.code.as_str()));
            assert_eq!(single("redirect_uri"), Some(request.redirect_uri.as_str()));
            assert_eq!(single("resource"), request.resource.as_deref());
            let verifier = single("code_verifier").expect("a verifier was given");
            assert!(is_verifier(verifier), "{verifier:?}");
            assert_eq!(CodeVerifier::parse(verifier), Some(request.code_verifier));
        }
        Err(err) => assert!(
            matches!(
                err.code,
                ErrorCode::InvalidRequest | ErrorCode::UnsupportedGrantType
            ),
            "{err:?}"
        ),
    }
}

#[derive(Arbitrary, Debug)]
struct Structured<'a> {
    id: &'a str,
    secret: &'a str,
    basic: bool,
    /// Spelling of the scheme and spaces before the credentials.
    scheme_upper: bool,
    spaces: u8,
    /// With Basic, also send the same client_id in the form (allowed).
    id_in_form: bool,
}

fn check_round_trip(s: &Structured<'_>) {
    let encode = |part: &str| form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    let (header, body) = if s.basic {
        let scheme = if s.scheme_upper { "BASIC" } else { "Basic" };
        let credentials = STANDARD.encode(format!("{}:{}", encode(s.id), encode(s.secret)));
        let spaces = " ".repeat(usize::from(s.spaces % 4) + 1);
        let mut form = form_urlencoded::Serializer::new(String::new());
        if s.id_in_form && !s.id.is_empty() {
            form.append_pair("client_id", s.id);
        }
        (
            Some(format!("{scheme}{spaces}{credentials}")),
            form.finish(),
        )
    } else {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_id", s.id);
        form.append_pair("client_secret", s.secret);
        (None, form.finish())
    };
    let params = Params::parse(&body);
    check_credentials(header.as_deref(), &params);
    let credentials = presented_credentials(header.as_deref(), &params)
        .unwrap_or_else(|err| panic!("well-formed credentials refused: {err:?}"));
    if s.basic {
        assert_eq!(credentials.method, AuthMethod::Basic);
        assert_eq!(credentials.client_id.as_deref(), Some(s.id));
    } else {
        // an empty value counts as absent (RFC 6749 §3.1)
        let expected = if s.secret.is_empty() {
            AuthMethod::None
        } else {
            AuthMethod::Post
        };
        assert_eq!(credentials.method, expected);
        let id = (!s.id.is_empty()).then_some(s.id);
        assert_eq!(credentials.client_id.as_deref(), id);
    }
    let complete = s.basic || (!s.id.is_empty() && !s.secret.is_empty());
    assert_eq!(
        authenticate(&credentials, &client(s.id, s.secret)).is_ok(),
        complete,
        "the exact client must authenticate"
    );
    let other_secret = format!("{}x", s.secret);
    assert!(authenticate(&credentials, &client(s.id, &other_secret)).is_err());
}

/// One input: what libFuzzer generates, or a corpus file replayed by `cargo test`.
pub fn run(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let (authorization, body) = match raw.split_once('\n') {
        Some((header, body)) => (Some(header), body),
        None => (None, &*raw),
    };
    let params = Params::parse(body);
    check_credentials(authorization, &params);
    check_token_request(&params);

    if let Ok(structured) = Structured::arbitrary_take_rest(Unstructured::new(data)) {
        check_round_trip(&structured);
    }
}
