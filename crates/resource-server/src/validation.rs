//! Access-token validation (RFC 9068 §4, RFC 8725, RFC 6750): pure domain logic, no HTTP and no
//! I/O. The caller checks the header with [`TokenValidator::check_header`], looks the key its
//! untrusted `kid` names up among the keys it already trusts, then calls [`TokenValidator::verify`] and
//! [`TokenValidator::authorize`] (or [`TokenValidator::validate`] for both). jsonwebtoken decodes
//! the header; the signature is checked with a key decoded once ([`crate::verifying_key`]) and
//! the claims are parsed into their types here.
//!
//! Security invariants:
//! - the algorithm is pinned by configuration; the token's `alg` must equal it (`none` and HMAC
//!   can never pass), and the trusted keys are of its type only; `jku`, `x5u`, `jwk`, `x5c` are
//!   never used, `kid` only selects among trusted keys;
//! - `typ` must be `at+jwt` / `application/at+jwt`; `crit` is refused (we understand no extension);
//! - the header is checked before the signature, the signature before any claim is read;
//! - every claim of [`AccessTokenClaims`] is required and typed; `iss` is compared exactly, `aud`
//!   must be one of our two resource URIs;
//! - `exp` is checked against the injected clock with sub-second precision and
//!   [`EXPIRY_LEEWAY`] = 0: a token is refused as soon as `now >= exp`;
//! - `jti` may not be empty (RFC 9068 §2.2), and a token issued after `now` (in whole seconds, as
//!   `iat` is) is refused: no clock of ours can have issued it.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use oauth::claims::is_access_token_type;
use oauth::{AccessTokenClaims, ClientId, Scope, UserName};

use crate::config::Config;
use crate::error::Error;
use crate::verifying_key::VerifyingKey;

/// Tolerance on `exp`. Tokens live 5 s: any leeway would lengthen every token's life.
pub const EXPIRY_LEEWAY: Duration = Duration::ZERO;

#[derive(Debug, Clone)]
pub struct TokenValidator {
    algorithm: Algorithm,
    issuer: String,
    client_id: ClientId,
    /// The resource URI (`aud`) of each of our endpoints.
    audiences: [(Scope, String); 2],
}

impl TokenValidator {
    pub fn new(config: &Config) -> Self {
        let deployment = &config.deployment;
        Self {
            algorithm: deployment.signing_algorithm,
            issuer: deployment.issuer.clone(),
            client_id: deployment.client_id.clone(),
            audiences: Scope::ALL.map(|scope| (scope, deployment.resource_uri(scope))),
        }
    }

    /// The pinned algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Reads and checks the (unverified) header: the pinned algorithm, an access token's `typ`, no
    /// `crit`, a `kid`.
    pub fn check_header<'t>(&self, token: &'t str) -> Result<CheckedHeader<'t>, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| MALFORMED)?;
        if header.alg != self.algorithm {
            return Err(Error::InvalidToken("the token's algorithm is not accepted"));
        }
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(Error::InvalidToken(
                "the token is not an access token (typ must be at+jwt)",
            ));
        }
        if header.crit.is_some() {
            return Err(Error::InvalidToken(
                "the token header has critical extensions we do not understand",
            ));
        }
        match header.kid {
            Some(kid) if !kid.is_empty() => Ok(CheckedHeader { token, kid }),
            _ => Err(Error::InvalidToken("the token header has no kid")),
        }
    }

    /// Checks the signature with `key`, then the claims: all present and well typed, the issuer,
    /// the audience, the expiry and `iat` against `now` (time since the Unix epoch, from the
    /// injected clock), a `jti`.
    pub fn verify(
        &self,
        token: &CheckedHeader<'_>,
        key: &VerifyingKey,
        now: Duration,
    ) -> Result<AccessTokenClaims, Error> {
        // decode_header has seen three parts; a fourth would leave a '.' in the payload, which
        // base64url refuses
        let (message, signature) = token.token.rsplit_once('.').ok_or(MALFORMED)?;
        let (_, payload) = message.split_once('.').ok_or(MALFORMED)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| MALFORMED)?;
        if !key.verifies(message.as_bytes(), &signature) {
            return Err(Error::InvalidToken("the token's signature is invalid"));
        }
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| MALFORMED)?;
        // a claim missing, or of the wrong type (several scopes, a bad user name): malformed
        let claims: AccessTokenClaims = serde_json::from_slice(&payload).map_err(|_| MALFORMED)?;
        if claims.iss != self.issuer {
            return Err(Error::InvalidToken(
                "the token was not issued by the trusted issuer",
            ));
        }
        if !self.audiences.iter().any(|(_, uri)| *uri == claims.aud) {
            return Err(Error::InvalidToken(
                "the token is not meant for this resource server",
            ));
        }
        check_expiry(claims.exp, now)?;
        check_issued_at(claims.iat, now)?;
        if claims.jti.is_empty() {
            return Err(Error::InvalidToken("the token has no jti"));
        }
        Ok(claims)
    }

    /// Decides whether verified `claims` grant this request: the registered client, the requested
    /// endpoint (`aud` and `scope`, which must agree), the requested user.
    pub fn authorize(
        &self,
        claims: &AccessTokenClaims,
        requested: Scope,
        user: &UserName,
    ) -> Result<(), Error> {
        if claims.client_id != self.client_id {
            return Err(Error::InvalidToken(
                "the token was issued to another client",
            ));
        }
        let audience = self
            .audiences
            .iter()
            .find(|(_, uri)| *uri == claims.aud)
            .map(|(scope, _)| *scope)
            .ok_or(Error::InvalidToken(
                "the token is not meant for this resource server",
            ))?;
        let scope = claims.scope;
        if scope != audience {
            return Err(Error::InvalidToken("the token's aud and scope disagree"));
        }
        if scope != requested {
            return Err(Error::InsufficientScope {
                required: requested,
                description: "the token grants access to another endpoint",
            });
        }
        if claims.sub != *user {
            return Err(Error::InsufficientScope {
                required: requested,
                description: "the token was issued for another user",
            });
        }
        Ok(())
    }

    /// [`verify`](Self::verify) then [`authorize`](Self::authorize).
    pub fn validate(
        &self,
        token: &CheckedHeader<'_>,
        key: &VerifyingKey,
        now: Duration,
        requested: Scope,
        user: &UserName,
    ) -> Result<AccessTokenClaims, Error> {
        let claims = self.verify(token, key, now)?;
        self.authorize(&claims, requested, user)?;
        Ok(claims)
    }
}

/// Refused when `now >= exp` (plus a leeway of zero), measured finer than whole seconds.
pub fn check_expiry(exp: u64, now: Duration) -> Result<(), Error> {
    if now >= Duration::from_secs(exp).saturating_add(EXPIRY_LEEWAY) {
        return Err(Error::InvalidToken("the token has expired"));
    }
    Ok(())
}

/// `iat` is whole seconds: a token issued within the current second is fine, one from a later
/// second is not.
pub fn check_issued_at(iat: u64, now: Duration) -> Result<(), Error> {
    if iat > now.as_secs() {
        return Err(Error::InvalidToken("the token was issued in the future"));
    }
    Ok(())
}

const MALFORMED: Error = Error::InvalidToken("the token is malformed");

/// A token whose header passed [`TokenValidator::check_header`], with the `kid` that selects its
/// key: the only form [`TokenValidator::verify`] takes, so the header is read once and its checks
/// cannot be skipped.
#[derive(Debug)]
pub struct CheckedHeader<'t> {
    token: &'t str,
    kid: String,
}

impl CheckedHeader<'_> {
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use common::config::Env;
    use common::service::ServiceConfig;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};

    /// What the route does, one call each: the header's checks, then the rest.
    impl TokenValidator {
        fn key_id(&self, token: &str) -> Result<String, Error> {
            self.check_header(token)
                .map(|checked| checked.kid().to_owned())
        }

        fn verify_token(
            &self,
            token: &str,
            key: &VerifyingKey,
            now: Duration,
        ) -> Result<AccessTokenClaims, Error> {
            self.verify(&self.check_header(token)?, key, now)
        }

        fn validate_token(
            &self,
            token: &str,
            key: &VerifyingKey,
            now: Duration,
            requested: Scope,
            user: &UserName,
        ) -> Result<AccessTokenClaims, Error> {
            self.validate(&self.check_header(token)?, key, now, requested, user)
        }
    }

    const NOW: u64 = 1_795_878_245;
    const KID: &str = "key-1";

    struct Fixture {
        validator: TokenValidator,
        encoding: EncodingKey,
        decoding: VerifyingKey,
        public_key: [u8; 32],
    }

    fn fixture() -> Fixture {
        fixture_with(&[])
    }

    fn fixture_with(pairs: &[(&'static str, &str)]) -> Fixture {
        let env = Env::from_vars(pairs);
        let config = Config::from_env(&env).unwrap();
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let der = signing.to_pkcs8_der().unwrap();
        Fixture {
            validator: TokenValidator::new(&config),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: VerifyingKey::Ed(signing.verifying_key()),
            public_key: signing.verifying_key().to_bytes(),
        }
    }

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "http://localhost:8081".into(),
            sub: alice(),
            aud: "http://localhost:8082/epoch_time".into(),
            client_id: ClientId::new("1234"),
            scope: Scope::EpochTime,
            iat: NOW,
            exp: NOW + 5,
            jti: "jti-1".into(),
        }
    }

    fn header() -> Header {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(KID.into());
        header
    }

    fn sign(f: &Fixture, header: &Header, claims: &impl serde::Serialize) -> String {
        jsonwebtoken::encode(header, claims, &f.encoding).unwrap()
    }

    fn at(secs: u64, millis: u64) -> Duration {
        Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    fn alice() -> UserName {
        UserName::parse("alice").unwrap()
    }

    fn unsigned(header: serde_json::Value, claims: serde_json::Value) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn a_valid_token_passes_every_check() {
        let f = fixture();
        let token = sign(&f, &header(), &claims());
        assert_eq!(f.validator.key_id(&token).unwrap(), KID);
        let got = f
            .validator
            .validate_token(&token, &f.decoding, at(NOW, 0), Scope::EpochTime, &alice())
            .unwrap();
        assert_eq!(got, claims());
    }

    #[test]
    fn typ_is_accepted_in_both_spellings_and_any_case() {
        let f = fixture();
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            let mut header = header();
            header.typ = Some(typ.into());
            let token = sign(&f, &header, &claims());
            assert!(f.validator.key_id(&token).is_ok(), "{typ}");
            assert!(f
                .validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .is_ok());
        }
    }

    #[test]
    fn the_header_is_checked_before_any_key_is_looked_up() {
        let f = fixture();
        let cases: Vec<(Header, &str)> = vec![
            (
                {
                    let mut h = header();
                    h.typ = Some("JWT".into());
                    h
                },
                "typ must be at+jwt",
            ),
            (
                {
                    let mut h = header();
                    h.typ = None;
                    h
                },
                "typ must be at+jwt",
            ),
            (
                {
                    let mut h = header();
                    h.kid = None;
                    h
                },
                "no kid",
            ),
            (
                {
                    let mut h = header();
                    h.kid = Some(String::new());
                    h
                },
                "no kid",
            ),
            (
                {
                    let mut h = header();
                    h.crit = Some(vec!["exp".into()]);
                    h
                },
                "critical",
            ),
        ];
        for (header, expected) in cases {
            let token = sign(&f, &header, &claims());
            let err = f.validator.key_id(&token).unwrap_err();
            assert!(
                matches!(err, Error::InvalidToken(d) if d.contains(expected)),
                "{err:?}"
            );
            assert!(f
                .validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .is_err());
        }
    }

    #[test]
    fn the_algorithm_is_pinned() {
        let f = fixture();
        let none = unsigned(
            serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": KID}),
            serde_json::to_value(claims()).unwrap(),
        );
        assert!(matches!(
            f.validator.key_id(&none),
            Err(Error::InvalidToken(_))
        ));
        assert!(f
            .validator
            .verify_token(&none, &f.decoding, at(NOW, 0))
            .is_err());

        // HS256 with the public key bytes as the secret: the classic algorithm confusion
        let mut hs = header();
        hs.alg = Algorithm::HS256;
        let secret = f.public_key;
        let token =
            jsonwebtoken::encode(&hs, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(
            f.validator.key_id(&token),
            Err(Error::InvalidToken("the token's algorithm is not accepted"))
        );
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .unwrap_err(),
            Error::InvalidToken("the token's algorithm is not accepted")
        );

        // an EdDSA token when ES256 is configured
        let es = fixture_with(&[("SIGNING_ALGORITHM", "ES256")]);
        let token = sign(&f, &header(), &claims());
        assert_eq!(
            es.validator.key_id(&token),
            Err(Error::InvalidToken("the token's algorithm is not accepted"))
        );
        assert_eq!(es.validator.algorithm(), Algorithm::ES256);
    }

    #[test]
    fn signature_issuer_and_audience_are_verified() {
        let f = fixture();
        let other = fixture();
        let token = sign(&other, &header(), &claims());
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .unwrap_err(),
            Error::InvalidToken("the token's signature is invalid")
        );

        let mut wrong_iss = claims();
        wrong_iss.iss = "http://localhost:8081/".into();
        let token = sign(&f, &header(), &wrong_iss);
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .unwrap_err(),
            Error::InvalidToken("the token was not issued by the trusted issuer")
        );

        let mut foreign = claims();
        foreign.aud = "http://evil.example/epoch_time".into();
        let token = sign(&f, &header(), &foreign);
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .unwrap_err(),
            Error::InvalidToken("the token is not meant for this resource server")
        );
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let f = fixture();
        let token = sign(&f, &header(), &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged.sub = UserName::parse("mallory").unwrap();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(
            f.validator
                .verify_token(&tampered, &f.decoding, at(NOW, 0))
                .unwrap_err(),
            Error::InvalidToken("the token's signature is invalid")
        );
    }

    #[test]
    fn required_claims_must_be_present() {
        let f = fixture();
        for missing in [
            "exp",
            "iss",
            "aud",
            "sub",
            "client_id",
            "scope",
            "iat",
            "jti",
        ] {
            let mut claims = serde_json::to_value(claims()).unwrap();
            claims.as_object_mut().unwrap().remove(missing);
            let token = sign(&f, &header(), &claims);
            let err = f
                .validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .unwrap_err();
            assert!(matches!(err, Error::InvalidToken(_)), "{missing}: {err:?}");
        }
    }

    #[test]
    fn claims_that_are_not_ours_do_not_parse() {
        let f = fixture();
        for (claim, value) in [
            ("scope", serde_json::json!("epoch_time current_time")),
            ("scope", serde_json::json!("admin")),
            ("scope", serde_json::json!(["epoch_time"])),
            ("sub", serde_json::json!("al ice")),
            ("sub", serde_json::json!("")),
            ("client_id", serde_json::json!(1234)),
        ] {
            let mut claims = serde_json::to_value(claims()).unwrap();
            claims[claim] = value.clone();
            let token = sign(&f, &header(), &claims);
            assert_eq!(
                f.validator.verify_token(&token, &f.decoding, at(NOW, 0)),
                Err(Error::InvalidToken("the token is malformed")),
                "{claim}: {value}"
            );
        }
    }

    #[test]
    fn expiry_has_zero_leeway_and_sub_second_precision() {
        let f = fixture();
        let token = sign(&f, &header(), &claims());
        let exp = NOW + 5;
        let expired = Error::InvalidToken("the token has expired");
        assert!(f
            .validator
            .verify_token(&token, &f.decoding, at(exp - 1, 500))
            .is_ok());
        assert!(f
            .validator
            .verify_token(&token, &f.decoding, at(exp - 1, 999))
            .is_ok());
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(exp, 0))
                .unwrap_err(),
            expired
        );
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(exp, 1))
                .unwrap_err(),
            expired
        );
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(exp + 1, 0))
                .unwrap_err(),
            expired
        );
        assert_eq!(EXPIRY_LEEWAY, Duration::ZERO);
    }

    /// RFC 9068 §2.2 / RFC 8725: `iat` and `jti` are required, and a token from a later second
    /// than now is refused.
    #[test]
    fn iat_and_jti_are_required_and_iat_may_not_lie_ahead() {
        let f = fixture();
        let mut future = claims();
        future.iat = NOW + 1;
        future.exp = NOW + 6;
        let token = sign(&f, &header(), &future);
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(NOW, 999))
                .unwrap_err(),
            Error::InvalidToken("the token was issued in the future")
        );
        // within its own second it is fine
        assert!(f
            .validator
            .verify_token(&token, &f.decoding, at(NOW + 1, 0))
            .is_ok());

        let mut no_jti = claims();
        no_jti.jti = String::new();
        let token = sign(&f, &header(), &no_jti);
        assert_eq!(
            f.validator
                .verify_token(&token, &f.decoding, at(NOW, 0))
                .unwrap_err(),
            Error::InvalidToken("the token has no jti")
        );
    }

    #[test]
    fn authorization_checks_client_endpoint_and_user() {
        let f = fixture();
        let v = &f.validator;
        let alice = alice();
        assert!(v.authorize(&claims(), Scope::EpochTime, &alice).is_ok());

        let mut other_client = claims();
        other_client.client_id = ClientId::new("5678");
        assert_eq!(
            v.authorize(&other_client, Scope::EpochTime, &alice),
            Err(Error::InvalidToken(
                "the token was issued to another client"
            ))
        );

        assert_eq!(
            v.authorize(&claims(), Scope::CurrentTime, &alice),
            Err(Error::InsufficientScope {
                required: Scope::CurrentTime,
                description: "the token grants access to another endpoint",
            })
        );

        let mut disagree = claims();
        disagree.scope = Scope::CurrentTime;
        assert_eq!(
            v.authorize(&disagree, Scope::CurrentTime, &alice),
            Err(Error::InvalidToken("the token's aud and scope disagree"))
        );

        let mut foreign = claims();
        foreign.aud = "http://localhost:8082/other".into();
        assert!(matches!(
            v.authorize(&foreign, Scope::EpochTime, &alice),
            Err(Error::InvalidToken(_))
        ));

        assert_eq!(
            v.authorize(
                &claims(),
                Scope::EpochTime,
                &UserName::parse("bob").unwrap()
            ),
            Err(Error::InsufficientScope {
                required: Scope::EpochTime,
                description: "the token was issued for another user",
            })
        );
    }

    #[test]
    fn audiences_follow_the_public_url() {
        let f = fixture_with(&[("RESOURCE_SERVER_PUBLIC_URL", "https://rs.example")]);
        let mut c = claims();
        c.aud = "https://rs.example/current_time".into();
        c.scope = Scope::CurrentTime;
        let token = sign(&f, &header(), &c);
        let got = f.validator.validate_token(
            &token,
            &f.decoding,
            at(NOW, 0),
            Scope::CurrentTime,
            &alice(),
        );
        assert_eq!(got, Ok(c));
    }
}
