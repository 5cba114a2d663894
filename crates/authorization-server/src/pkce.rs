//! PKCE (RFC 7636) with the S256 method only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An S256 code challenge: BASE64URL(SHA256(verifier)), always 43 characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeChallenge(String);

/// A code verifier: 43–128 characters of `A-Z a-z 0-9 - . _ ~` (RFC 7636 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

const S256_CHALLENGE_LEN: usize = 43;

impl CodeChallenge {
    pub fn parse(raw: &str) -> Option<Self> {
        let base64url = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        (raw.len() == S256_CHALLENGE_LEN && raw.chars().all(base64url)).then(|| Self(raw.into()))
    }

    /// True when `verifier` hashes to this challenge (compared in constant time).
    pub fn is_satisfied_by(&self, verifier: &CodeVerifier) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl CodeVerifier {
    pub fn parse(raw: &str) -> Option<Self> {
        let unreserved = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
        ((43..=128).contains(&raw.len()) && raw.chars().all(unreserved)).then(|| Self(raw.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_verifies() {
        let challenge = CodeChallenge::parse(CHALLENGE).unwrap();
        assert!(challenge.is_satisfied_by(&CodeVerifier::parse(VERIFIER).unwrap()));
    }

    #[test]
    fn another_verifier_does_not() {
        let challenge = CodeChallenge::parse(CHALLENGE).unwrap();
        let other = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        assert!(!challenge.is_satisfied_by(&other));
    }

    #[test]
    fn verifier_length_and_charset_are_enforced() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_none());
        assert!(CodeVerifier::parse(&"a".repeat(43)).is_some());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_some());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_none());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))).is_none());
    }

    #[test]
    fn challenge_must_look_like_s256_output() {
        assert!(CodeChallenge::parse(&CHALLENGE[..42]).is_none());
        assert!(CodeChallenge::parse(&format!("{}=", &CHALLENGE[..42])).is_none());
        // a plain-method challenge (a verifier) is longer than 43 characters or not base64url
        assert!(CodeChallenge::parse(&"a~".repeat(22)).is_none());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const VERIFIER_REGEX: &str = "[A-Za-z0-9._~-]{43,128}";

        fn s256(verifier: &str) -> String {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        }

        /// RFC 7636 §4.1 and §4.2 written without the parsers' code.
        fn is_verifier(raw: &str) -> bool {
            (43..=128).contains(&raw.len())
                && raw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        }

        fn is_s256_challenge(raw: &str) -> bool {
            raw.len() == 43
                && raw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        }

        proptest! {
            #[test]
            fn a_verifier_satisfies_its_challenge_and_no_other(
                verifier in VERIFIER_REGEX,
                other in VERIFIER_REGEX,
            ) {
                let parsed = CodeVerifier::parse(&verifier);
                prop_assert!(parsed.is_some());
                let challenge = CodeChallenge::parse(&s256(&verifier));
                prop_assert!(challenge.is_some());
                let (Some(parsed), Some(challenge)) = (parsed, challenge) else {
                    return Ok(());
                };
                prop_assert!(challenge.is_satisfied_by(&parsed));
                prop_assume!(other != verifier);
                let other = CodeVerifier::parse(&other);
                prop_assert!(other.is_some_and(|other| !challenge.is_satisfied_by(&other)));
            }

            #[test]
            fn a_verifier_parses_iff_rfc_7636(raw in "\\PC{0,140}|[A-Za-z0-9._~+/= -]{38,134}") {
                prop_assert_eq!(CodeVerifier::parse(&raw).is_some(), is_verifier(&raw));
            }

            #[test]
            fn a_challenge_parses_iff_43_base64url_characters(
                raw in "\\PC{0,50}|[A-Za-z0-9_+/=~.-]{40,46}|[A-Za-z0-9_-]{43}"
            ) {
                prop_assert_eq!(CodeChallenge::parse(&raw).is_some(), is_s256_challenge(&raw));
            }

            #[test]
            fn a_verifier_is_never_its_own_challenge(verifier in VERIFIER_REGEX) {
                // the `plain` method: sending the verifier as the challenge must not work
                if let (Some(challenge), Some(parsed)) =
                    (CodeChallenge::parse(&verifier), CodeVerifier::parse(&verifier))
                {
                    prop_assert!(!challenge.is_satisfied_by(&parsed));
                }
            }
        }
    }
}
