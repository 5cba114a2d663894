//! A trusted public key, decoded once when the JWKS is read. jsonwebtoken builds its verifier from
//! a key's bytes on every token (for Ed25519, decompressing the point: ≈ 40,000 instructions a
//! request, docs/performance.md) and has no API to keep one, so the signature is checked here:
//! Ed25519 by ed25519-dalek (its AVX2 code verifies faster than AWS-LC here), ES256 and RS256 by
//! AWS-LC (5 × and 17 × faster than p256 and rsa).

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use ed25519_dalek::Verifier;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

/// RFC 7518 §3.3 asks for 2048 bits at least; AWS-LC's RS256 checks 2048 to 8192 on every
/// signature, so a key outside is dropped when the JWKS is read instead of failing each token.
const RSA_MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// One key of the pinned algorithm, ready to verify.
#[derive(Debug)]
pub enum VerifyingKey {
    Ed(ed25519_dalek::VerifyingKey),
    /// ES256 (an uncompressed P-256 point) or RS256 (a modulus within `RSA_MODULUS_BITS`), in AWS-LC.
    Lc(ParsedPublicKey),
}

impl VerifyingKey {
    /// The key for `algorithm`, or `None` when `key` is of another type or not a valid key of it
    /// (an Ed25519 point that does not decompress, a P-256 point off the curve, an RSA modulus
    /// shorter than 2048 bits).
    pub fn new(key: &DecodingKey, algorithm: Algorithm) -> Option<Self> {
        if key.family() != algorithm.family() {
            return None;
        }
        match (key.kind(), algorithm) {
            (DecodingKeyKind::SecretOrDer(bytes), Algorithm::EdDSA) => {
                let bytes = <&[u8; 32]>::try_from(bytes.as_slice()).ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(bytes)
                    .ok()
                    .map(Self::Ed)
            }
            (DecodingKeyKind::SecretOrDer(bytes), Algorithm::ES256) => {
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, bytes)
                    .ok()
                    .map(Self::Lc)
            }
            (DecodingKeyKind::RsaModulusExponent { n, e }, Algorithm::RS256) => {
                if !RSA_MODULUS_BITS.contains(&bits(n)) {
                    return None;
                }
                RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                    .ok()
                    .map(Self::Lc)
            }
            _ => None,
        }
    }

    /// True when `signature` (the JWS's, decoded) signs `message` (`header.payload`).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            // RFC 8032's check, as jsonwebtoken made it (`verify_strict` would also decompress R
            // to refuse small-order points: ≈ 55,000 instructions, and the key is our issuer's)
            Self::Ed(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
            Self::Lc(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

/// The bit length of a big-endian unsigned integer.
fn bits(number: &[u8]) -> usize {
    let zeros = number.iter().take_while(|byte| **byte == 0).count();
    number.get(zeros).map_or(0, |first| {
        (number.len() - zeros) * 8 - first.leading_zeros() as usize
    })
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;

    use super::*;

    const MESSAGE: &[u8] = b"header.payload";

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A public key as the JWKS brings it, and a signature of [`MESSAGE`] by its private key.
    fn signed(algorithm: Algorithm) -> (DecodingKey, Vec<u8>) {
        let mut rng = rand::rngs::OsRng;
        match algorithm {
            Algorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::generate(&mut rng);
                let public = DecodingKey::from_ed_components(&b64(key.verifying_key().as_bytes()));
                (public.unwrap(), key.sign(MESSAGE).to_vec())
            }
            Algorithm::ES256 => {
                let key = p256::ecdsa::SigningKey::random(&mut rng);
                let point = key.verifying_key().to_encoded_point(false);
                let (x, y) = (point.x().unwrap(), point.y().unwrap());
                let public = DecodingKey::from_ec_components(&b64(x), &b64(y));
                let signature: p256::ecdsa::Signature = key.sign(MESSAGE);
                (public.unwrap(), signature.to_vec())
            }
            _ => {
                let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
                let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
                let public = DecodingKey::from_rsa_raw_components(&n, &e);
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
                (public, signer.sign(MESSAGE).to_vec())
            }
        }
    }

    #[test]
    fn each_algorithm_verifies_its_own_signature_and_nothing_else() {
        for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            let (public, signature) = signed(algorithm);
            let key = VerifyingKey::new(&public, algorithm).unwrap();
            assert!(key.verifies(MESSAGE, &signature), "{algorithm:?}");
            assert!(
                !key.verifies(b"header.payloaD", &signature),
                "{algorithm:?}"
            );
            let mut flipped = signature.clone();
            flipped[3] ^= 1;
            assert!(!key.verifies(MESSAGE, &flipped), "{algorithm:?}");
            assert!(!key.verifies(MESSAGE, &signature[1..]), "{algorithm:?}");
            assert!(!key.verifies(MESSAGE, &[]), "{algorithm:?}");
            let (_, other) = signed(algorithm);
            assert!(!key.verifies(MESSAGE, &other), "{algorithm:?}");
        }
    }

    #[test]
    fn a_key_of_another_type_is_no_key() {
        let (ed, _) = signed(Algorithm::EdDSA);
        let (es, _) = signed(Algorithm::ES256);
        assert!(VerifyingKey::new(&ed, Algorithm::ES256).is_none());
        assert!(VerifyingKey::new(&ed, Algorithm::RS256).is_none());
        assert!(VerifyingKey::new(&es, Algorithm::EdDSA).is_none());
        assert!(
            VerifyingKey::new(&DecodingKey::from_secret(b"secret"), Algorithm::HS256).is_none()
        );
        // an HMAC secret of an Ed25519 key's length is still a secret
        let secret = DecodingKey::from_secret(ed.as_bytes());
        assert!(VerifyingKey::new(&secret, Algorithm::EdDSA).is_none());
    }

    #[test]
    fn keys_that_are_not_points_or_too_short_are_refused() {
        // y = 2 is not the y of any Ed25519 point
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        let ed = DecodingKey::from_ed_components(&b64(&not_a_point)).unwrap();
        assert!(VerifyingKey::new(&ed, Algorithm::EdDSA).is_none());
        let off_curve = DecodingKey::from_ec_components(&b64(&[1; 32]), &b64(&[2; 32])).unwrap();
        assert!(VerifyingKey::new(&off_curve, Algorithm::ES256).is_none());
        let short = DecodingKey::from_rsa_raw_components(&[0xC5; 255], &[1, 0, 1]);
        assert!(VerifyingKey::new(&short, Algorithm::RS256).is_none());
        let long_enough = DecodingKey::from_rsa_raw_components(&[0xC5; 256], &[1, 0, 1]);
        assert!(VerifyingKey::new(&long_enough, Algorithm::RS256).is_some());
        // Over 8192 bits: refused too, so that a JWKS cannot make each check arbitrarily costly.
        let too_long = DecodingKey::from_rsa_raw_components(&[0xC5; 1025], &[1, 0, 1]);
        assert!(VerifyingKey::new(&too_long, Algorithm::RS256).is_none());
        // Leading zero bytes do not make a modulus longer.
        let padded =
            DecodingKey::from_rsa_raw_components(&[&[0; 4][..], &[0xC5; 255]].concat(), &[1, 0, 1]);
        assert!(VerifyingKey::new(&padded, Algorithm::RS256).is_none());
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bits(&[]), 0);
        assert_eq!(bits(&[0, 0]), 0);
        assert_eq!(bits(&[1]), 1);
        assert_eq!(bits(&[0, 0x80, 0]), 16);
        assert_eq!(bits(&[0x7F; 256]), 2047);
    }
}
