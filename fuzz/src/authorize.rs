//! The `/authorize` query: `Params::parse` then the rules of `authorize`, on every input twice:
//! 1. the input as the raw query string (seeds: `fuzz/corpus/authorize/`);
//! 2. the input as edits (remove, replace, repeat a parameter) of a valid request.
//!
//! Invariants: a granted request has exactly the registered client and redirect URI, a valid user
//! (its `login_hint`), a registered scope and its resource, an S256 challenge; a request is only
//! ever refused by redirect when its `client_id` and `redirect_uri` are exactly the registered
//! ones (never redirect anywhere else); an echoed `state` is the request's, at most 512 bytes.

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use authorization_server::fuzzing::{authorize, CodeChallenge, Params, Refusal};
use authorization_server::RegisteredClient;
use oauth::{Scope, UserName};
use url::Url;

const CLIENT_ID: &str = "1234";
const REDIRECT_URI: &str = "http://localhost:8080/callback";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

static RESOURCE_SERVER: LazyLock<Url> =
    LazyLock::new(|| Url::parse("http://localhost:8082").expect("a valid URL"));

fn client(all_scopes: bool) -> RegisteredClient {
    RegisteredClient {
        id: CLIENT_ID.into(),
        secret: "qwerty".into(),
        redirect_uri: oauth::RedirectUri::parse(REDIRECT_URI).expect("a valid redirect URI"),
        scopes: if all_scopes {
            Scope::ALL.to_vec()
        } else {
            vec![Scope::EpochTime]
        },
    }
}

/// Reference predicate for a user name, written independently of `UserName::parse`.
fn is_user_name(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

fn check(params: &Params, client: &RegisteredClient) {
    let single = |name: &str| params.single(name).ok().flatten();
    let trusted_target = single("client_id") == Some(client.id.as_str())
        && single("redirect_uri") == Some(client.redirect_uri.as_str());
    match authorize(params, client, &RESOURCE_SERVER) {
        Ok(granted) => {
            let grant = &granted.grant;
            assert!(trusted_target);
            assert_eq!(grant.client_id, client.id);
            assert_eq!(grant.redirect_uri, client.redirect_uri);
            assert!(is_user_name(grant.user.as_str()), "{:?}", grant.user);
            assert_eq!(
                UserName::parse(grant.user.as_str()).as_ref(),
                Ok(&grant.user)
            );
            assert_eq!(single("login_hint"), Some(grant.user.as_str()));
            assert!(client.may_be_granted(grant.scope));
            assert_eq!(single("scope"), Some(grant.scope.as_str()));
            assert_eq!(grant.resource, grant.scope.resource_uri(&RESOURCE_SERVER));
            assert!(params.all("resource").len() <= 1);
            assert_eq!(single("response_type"), Some("code"));
            assert_eq!(single("code_challenge_method"), Some("S256"));
            let challenge = single("code_challenge").and_then(CodeChallenge::parse);
            assert_eq!(challenge.as_ref(), Some(&grant.code_challenge));
            assert_eq!(params.first_repeated(&["resource"]), None);
            assert_eq!(granted.state.as_deref(), single("state"));
            assert!(granted.state.as_ref().is_none_or(|s| s.len() <= 512));
        }
        Err(Refusal::Direct(_)) => assert!(!trusted_target, "a trusted request not redirected"),
        Err(Refusal::ByRedirect { state, .. }) => {
            assert!(trusted_target, "redirected to an untrusted client or URI");
            if let Some(state) = state {
                assert!(state.len() <= 512);
                assert_eq!(single("state"), Some(state.as_str()));
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Name<'a> {
    ResponseType,
    ClientId,
    RedirectUri,
    Scope,
    State,
    CodeChallenge,
    CodeChallengeMethod,
    LoginHint,
    Resource,
    Other(&'a str),
}

impl<'a> Name<'a> {
    fn as_str(self) -> &'a str {
        match self {
            Self::ResponseType => "response_type",
            Self::ClientId => "client_id",
            Self::RedirectUri => "redirect_uri",
            Self::Scope => "scope",
            Self::State => "state",
            Self::CodeChallenge => "code_challenge",
            Self::CodeChallengeMethod => "code_challenge_method",
            Self::LoginHint => "login_hint",
            Self::Resource => "resource",
            Self::Other(other) => other,
        }
    }

    /// A good value; `alt` picks the other scope and its resource.
    fn good_value(self, alt: bool) -> &'static str {
        match self {
            Self::ResponseType => "code",
            Self::ClientId => CLIENT_ID,
            Self::RedirectUri => REDIRECT_URI,
            Self::Scope if alt => "current_time",
            Self::Scope => "epoch_time",
            Self::State => "xyz",
            Self::CodeChallenge => CHALLENGE,
            Self::CodeChallengeMethod => "S256",
            Self::LoginHint => "alice",
            Self::Resource if alt => "http://localhost:8082/current_time",
            Self::Resource => "http://localhost:8082/epoch_time",
            Self::Other(_) => "",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Value<'a> {
    Good(bool),
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Edit<'a> {
    Remove(Name<'a>),
    Replace(Name<'a>, Value<'a>),
    Append(Name<'a>, Value<'a>),
}

#[derive(Arbitrary, Debug)]
struct Structured<'a> {
    all_scopes: bool,
    edits: Vec<Edit<'a>>,
}

impl Structured<'_> {
    fn query(&self) -> String {
        let mut owned: Vec<(String, String)> = [
            Name::ResponseType,
            Name::ClientId,
            Name::RedirectUri,
            Name::Scope,
            Name::State,
            Name::CodeChallenge,
            Name::CodeChallengeMethod,
            Name::LoginHint,
            Name::Resource,
        ]
        .into_iter()
        .map(|name| (name.as_str().to_owned(), name.good_value(false).to_owned()))
        .collect();
        let value = |name: Name<'_>, value: &Value<'_>| -> String {
            match value {
                Value::Good(alt) => name.good_value(*alt).to_owned(),
                Value::Other(other) => (*other).to_owned(),
            }
        };
        for edit in &self.edits {
            match edit {
                Edit::Remove(name) => owned.retain(|(k, _)| k != name.as_str()),
                Edit::Replace(name, v) => {
                    owned.retain(|(k, _)| k != name.as_str());
                    owned.push((name.as_str().to_owned(), value(*name, v)));
                }
                Edit::Append(name, v) => owned.push((name.as_str().to_owned(), value(*name, v))),
            }
        }
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        serializer.extend_pairs(&owned);
        serializer.finish()
    }
}

/// One input: what libFuzzer generates, or a corpus file replayed by `cargo test`.
pub fn run(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let params = Params::parse(&raw);
    check(&params, &client(true));
    check(&params, &client(false));

    let Ok(structured) = Structured::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let query = structured.query();
    let client = client(structured.all_scopes);
    let params = Params::parse(&query);
    check(&params, &client);
    if structured.edits.is_empty() {
        assert!(
            authorize(&params, &client, &RESOURCE_SERVER).is_ok(),
            "{query}"
        );
    }
}
