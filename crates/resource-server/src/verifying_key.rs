//! A trusted public key, decoded once when the JWKS is read. jsonwebtoken builds its verifier from
//! a key's bytes on every token (for Ed25519, decompressing the point: ≈ 40,000 instructions a
//! request, docs/performance.md) and has no API to keep one, so the signature is checked here.

use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use rsa::pkcs1v15;
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use sha2::Sha256;

/// Least RSA modulus size (RFC 7518 §3.3: 2048 bits at least).
const MIN_RSA_MODULUS_BITS: usize = 2048;

/// One key of the pinned algorithm, ready to verify.
#[derive(Debug)]
pub enum VerifyingKey {
    Ed(ed25519_dalek::VerifyingKey),
    Es(p256::ecdsa::VerifyingKey),
    Rs(pkcs1v15::VerifyingKey<Sha256>),
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
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                    .ok()
                    .map(Self::Es)
            }
            (DecodingKeyKind::RsaModulusExponent { n, e }, Algorithm::RS256) => {
                let n = BigUint::from_bytes_be(n);
                if n.bits() < MIN_RSA_MODULUS_BITS {
                    return None;
                }
                let key = RsaPublicKey::new(n, BigUint::from_bytes_be(e)).ok()?;
                Some(Self::Rs(pkcs1v15::VerifyingKey::new(key)))
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
            Self::Es(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
            Self::Rs(key) => pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
        }
    }
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
                let key = rsa::RsaPrivateKey::new(&mut rng, MIN_RSA_MODULUS_BITS).unwrap();
                let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
                let public = DecodingKey::from_rsa_raw_components(&n, &e);
                let signer = pkcs1v15::SigningKey::<Sha256>::new(key);
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
    }
}
