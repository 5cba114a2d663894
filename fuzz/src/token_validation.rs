//! The resource server's token validation (`TokenValidator::key_id`, `verify`, `validate`) with a
//! fixed Ed25519 test key, on every input twice:
//! 1. the input as the raw token string (seeds: `fuzz/corpus/token_validation/`);
//! 2. the input as the choices of a structured token: a header and claims built from good values
//!    or arbitrary ones, signed with the test key (or not), checked against a model of what must
//!    pass: every accepted token has `iss`/`aud` as configured, an `EdDSA` header with an
//!    access-token `typ`, a `kid`, no `crit`, and has not expired; every refused one is
//!    `invalid_token`.

use std::sync::LazyLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::config::Env;
use common::service::ServiceConfig;
use ed25519_dalek::Signer;
use oauth::{AccessTokenClaims, Scope};
use resource_server::validation::{CheckedHeader, TokenValidator};
use resource_server::verifying_key::VerifyingKey;
use resource_server::{Config, Error};
use serde_json::{json, Map, Value};

const ISSUER: &str = "http://localhost:8081";
const AUDIENCES: [(Scope, &str); 2] = [
    (Scope::CurrentTime, "http://localhost:8082/current_time"),
    (Scope::EpochTime, "http://localhost:8082/epoch_time"),
];
const CLIENT_ID: &str = "1234";
const NOW_SECS: u64 = 1_795_878_245;

struct Fixture {
    validator: TokenValidator,
    signing: ed25519_dalek::SigningKey,
    other: ed25519_dalek::SigningKey,
    decoding: VerifyingKey,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let env = Env::from_pairs([
        ("ISSUER", ISSUER.to_owned()),
        (
            "RESOURCE_SERVER_PUBLIC_URL",
            "http://localhost:8082".to_owned(),
        ),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        ("SIGNING_ALGORITHM", "EdDSA".to_owned()),
    ]);
    let config = Config::from_env(&env).expect("the fuzz configuration is valid");
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let decoding = VerifyingKey::Ed(signing.verifying_key());
    Fixture {
        validator: TokenValidator::new(&config),
        signing,
        other: ed25519_dalek::SigningKey::from_bytes(&[8; 32]),
        decoding,
    }
});

fn is_access_token_type(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ == "at+jwt" || typ == "application/at+jwt"
}

/// The invariants of any outcome, whatever the token.
fn check_outcome(token: &str, now: Duration) -> Option<AccessTokenClaims> {
    let f = &*FIXTURE;
    let checked = f.validator.check_header(token);
    if let Err(err) = &checked {
        assert!(
            matches!(err, Error::InvalidToken(_)),
            "check_header: {err:?}"
        );
    }
    let verified = checked
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|checked| f.validator.verify(checked, &f.decoding, now));
    match verified {
        Ok(claims) => {
            assert_eq!(claims.iss, ISSUER, "accepted a foreign issuer");
            assert!(
                AUDIENCES.iter().any(|(_, aud)| *aud == claims.aud),
                "accepted a foreign audience: {:?}",
                claims.aud
            );
            assert!(
                now < Duration::from_secs(claims.exp),
                "accepted an expired token"
            );
            assert!(
                claims.iat <= now.as_secs(),
                "accepted a token from the future"
            );
            assert!(!claims.jti.is_empty(), "accepted a token without a jti");
            let header = jsonwebtoken::decode_header(token).expect("a verified token has a header");
            assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
            assert!(header.typ.as_deref().is_some_and(is_access_token_type));
            assert!(header.crit.is_none());
            let checked = checked.expect("a verified token's header passed its checks");
            assert!(!checked.kid().is_empty());
            assert_eq!(header.kid.as_deref(), Some(checked.kid()));
            check_validate(&checked, now, &claims);
            Some(claims)
        }
        Err(err) => {
            assert!(matches!(err, Error::InvalidToken(_)), "verify: {err:?}");
            None
        }
    }
}

/// `validate` = `verify` + `authorize`: grants exactly the endpoint of `aud`, when `scope` agrees,
/// to the registered client and the token's user.
fn check_validate(token: &CheckedHeader<'_>, now: Duration, claims: &AccessTokenClaims) {
    let f = &*FIXTURE;
    let user = &claims.sub;
    for (requested, aud) in AUDIENCES {
        let got = f
            .validator
            .validate(token, &f.decoding, now, requested, user);
        let expected =
            claims.client_id == CLIENT_ID && claims.aud == aud && claims.scope == requested;
        assert_eq!(got.is_ok(), expected, "validate for {requested}: {got:?}");
        if let Ok(validated) = got {
            assert_eq!(&validated, claims);
        }
    }
}

/// A value that is either the good one or arbitrary (which may happen to be good).
#[derive(Arbitrary, Debug)]
enum Choice<T> {
    Good,
    Other(T),
}

#[derive(Arbitrary, Debug)]
enum Alg {
    EdDsa,
    None,
    Hs256,
    Es256,
    Rs256,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Aud {
    Ours(bool),
    Other(String),
    /// An array holding ours: RFC 7519 allows it, our claims contract (one endpoint) does not.
    Array(bool),
    Missing,
}

#[derive(Arbitrary, Debug)]
enum Signature {
    Good,
    OtherKey,
    Flipped(u8),
    Empty,
}

#[derive(Arbitrary, Debug)]
struct Structured {
    alg: Alg,
    typ: Option<Choice<String>>,
    kid: Option<String>,
    crit: bool,
    /// Header parameters that must never change the outcome (RFC 8725: never fetch keys).
    jku: Option<String>,
    x5u: Option<String>,
    iss: Option<Choice<String>>,
    aud: Aud,
    sub: Option<String>,
    client_id: Option<Choice<String>>,
    scope: Option<Choice<String>>,
    iat: Option<u64>,
    /// `exp` relative to now (seconds), or absolute.
    exp: Option<Result<i16, u64>>,
    jti: Option<String>,
    now_millis: u16,
    signature: Signature,
}

impl Structured {
    fn token(&self) -> (String, bool) {
        let mut good = true;
        let mut header = Map::new();
        let alg = match &self.alg {
            Alg::EdDsa => "EdDSA",
            Alg::None => "none",
            Alg::Hs256 => "HS256",
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::Other(other) => other.as_str(),
        };
        good &= alg == "EdDSA";
        header.insert("alg".into(), json!(alg));
        match &self.typ {
            None => good = false,
            Some(Choice::Good) => {
                header.insert("typ".into(), json!("at+jwt"));
            }
            Some(Choice::Other(typ)) => {
                good &= is_access_token_type(typ);
                header.insert("typ".into(), json!(typ));
            }
        }
        match &self.kid {
            None => good = false,
            Some(kid) => {
                good &= !kid.is_empty();
                header.insert("kid".into(), json!(kid));
            }
        }
        if self.crit {
            good = false;
            header.insert("crit".into(), json!(["exp"]));
        }
        if let Some(jku) = &self.jku {
            header.insert("jku".into(), json!(jku));
        }
        if let Some(x5u) = &self.x5u {
            header.insert("x5u".into(), json!(x5u));
        }

        let now = self.now();
        let mut claims = Map::new();
        let mut string_claim =
            |name: &str, value: &Option<Choice<String>>, good_value: &str| match value {
                None => good = false,
                Some(Choice::Good) => {
                    claims.insert(name.into(), json!(good_value));
                }
                Some(Choice::Other(other)) => {
                    if name == "iss" {
                        good &= other == ISSUER;
                    }
                    claims.insert(name.into(), json!(other));
                }
            };
        string_claim("iss", &self.iss, ISSUER);
        string_claim("client_id", &self.client_id, CLIENT_ID);
        string_claim("scope", &self.scope, "epoch_time");
        match &self.aud {
            Aud::Ours(current) => {
                claims.insert("aud".into(), json!(AUDIENCES[usize::from(!current)].1));
            }
            Aud::Other(aud) => {
                good &= AUDIENCES.iter().any(|(_, ours)| ours == aud);
                claims.insert("aud".into(), json!(aud));
            }
            Aud::Array(current) => {
                good = false;
                claims.insert("aud".into(), json!([AUDIENCES[usize::from(!current)].1]));
            }
            Aud::Missing => good = false,
        }
        for (name, value) in [("sub", &self.sub), ("jti", &self.jti)] {
            match value {
                None => good = false,
                Some(value) => {
                    good &= name != "jti" || !value.is_empty();
                    claims.insert(name.into(), json!(value));
                }
            }
        }
        match self.iat {
            None => good = false,
            Some(iat) => {
                good &= iat <= now.as_secs();
                claims.insert("iat".into(), json!(iat));
            }
        }
        match self.exp {
            None => good = false,
            Some(exp) => {
                let exp = match exp {
                    Ok(delta) => NOW_SECS.saturating_add_signed(i64::from(delta)),
                    Err(absolute) => absolute,
                };
                good &= now < Duration::from_secs(exp);
                claims.insert("exp".into(), json!(exp));
            }
        }

        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        let f = &*FIXTURE;
        let signature = match self.signature {
            Signature::Good => f.signing.sign(signing_input.as_bytes()).to_bytes().to_vec(),
            Signature::OtherKey => {
                good = false;
                f.other.sign(signing_input.as_bytes()).to_bytes().to_vec()
            }
            Signature::Flipped(bit) => {
                good = false;
                let mut bytes = f.signing.sign(signing_input.as_bytes()).to_bytes();
                bytes[usize::from(bit / 8) % 64] ^= 1 << (bit % 8);
                bytes.to_vec()
            }
            Signature::Empty => {
                good = false;
                Vec::new()
            }
        };
        (
            format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
            good,
        )
    }

    fn now(&self) -> Duration {
        Duration::from_secs(NOW_SECS) + Duration::from_millis(u64::from(self.now_millis % 1000))
    }
}

/// One input: what libFuzzer generates, or a corpus file replayed by `cargo test`.
pub fn run(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    check_outcome(&raw, Duration::from_secs(NOW_SECS));

    let Ok(structured) = Structured::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (token, expected) = structured.token();
    let accepted = check_outcome(&token, structured.now());
    assert_eq!(
        accepted.is_some(),
        expected,
        "the model and the validator disagree on {structured:?}"
    );
}
