//! The signing key: generated at start or read from a PKCS#8 PEM file, with its public half as a
//! JWK whose `kid` is its RFC 7638 thumbprint, so that every replica given the same key publishes
//! the same `kid`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use rand::RngCore;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// RSA keys shorter than this are refused (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the PEM is not a {0} private key: {1}")]
    Parse(&'static str, String),
    #[error("cannot generate the key: {0}")]
    Generate(String),
    #[error("RSA key of {0} bits; at least {MIN_RSA_BITS} are required")]
    RsaTooShort(usize),
    #[error("algorithm {0:?} is not supported; use EdDSA, ES256 or RS256")]
    Unsupported(Algorithm),
    #[error("key directory: {0}")]
    Dir(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// The private key, parsed once at load, in AWS-LC's signers: its assembly signs Ed25519 in half
/// the time of ed25519-dalek, ES256 and RS256 in an eighth and a quarter of p256's and rsa's
/// (docs/performance.md). The RustCrypto crates only read the key files and give the public JWK.
enum Signer {
    Ed(signature::Ed25519KeyPair),
    Es(signature::EcdsaKeyPair),
    Rs(signature::RsaKeyPair),
}

impl Signer {
    /// The JWS signature (RFC 7518 §3): Ed25519's 64 bytes, ECDSA's fixed-size `r‖s`, RSA
    /// PKCS#1 v1.5 with SHA-256 (blinded by AWS-LC).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Sign("the signer failed".into());
        match self {
            Self::Ed(key) => Ok(key.sign(message).as_ref().to_vec()),
            Self::Es(key) => Ok(key
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Self::Rs(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    signer: Signer,
    /// The base64url JWS header (`alg`, `typ: at+jwt`, `kid`): the same for every token of this
    /// key, so encoded once.
    encoded_header: String,
    /// The public key's JWK members (`kty`, `crv`, `x`, `y`, `n`, `e`): no private part.
    public_members: Map<String, Value>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parse_error(kind: &'static str) -> impl Fn(&dyn std::fmt::Display) -> KeyError {
    move |err| KeyError::Parse(kind, err.to_string())
}

impl SigningKey {
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        match algorithm {
            Algorithm::EdDSA => {
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                Self::from_ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            Algorithm::ES256 => {
                let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
                Self::from_p256(&secret)
            }
            Algorithm::RS256 => {
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, MIN_RSA_BITS)
                    .map_err(|err| KeyError::Generate(err.to_string()))?;
                Self::from_rsa(&key)
            }
            other => Err(KeyError::Unsupported(other)),
        }
    }

    /// Reads a private key of `algorithm`'s type: PKCS#8 PEM (what `openssl genpkey` writes);
    /// also SEC1 for P-256 and PKCS#1 for RSA.
    pub fn from_pem(algorithm: Algorithm, pem: &str) -> Result<Self, KeyError> {
        match algorithm {
            Algorithm::EdDSA => {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|e| parse_error("Ed25519")(&e))?;
                Self::from_ed25519(key)
            }
            Algorithm::ES256 => {
                use p256::pkcs8::DecodePrivateKey;
                let secret = p256::SecretKey::from_pkcs8_pem(pem)
                    .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                    .map_err(|e| parse_error("P-256")(&e))?;
                Self::from_p256(&secret)
            }
            Algorithm::RS256 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::DecodePrivateKey;
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                    .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                    .map_err(|e| parse_error("RSA")(&e))?;
                Self::from_rsa(&key)
            }
            other => Err(KeyError::Unsupported(other)),
        }
    }

    fn from_ed25519(key: ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let public = key.verifying_key().to_bytes();
        let signer = signature::Ed25519KeyPair::from_seed_and_public_key(key.as_bytes(), &public)
            .map_err(|e| parse_error("Ed25519")(&e))?;
        Ok(Self::new(
            Algorithm::EdDSA,
            Signer::Ed(signer),
            json!({ "crv": "Ed25519", "kty": "OKP", "x": b64(&public) }),
        ))
    }

    fn from_p256(secret: &p256::SecretKey) -> Result<Self, KeyError> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(KeyError::Generate(
                "the public point is the identity".into(),
            ));
        };
        // The scalar's copy is wiped when dropped, as the other key material is.
        let scalar = p256::elliptic_curve::zeroize::Zeroizing::new(secret.to_bytes());
        let signer = signature::EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            point.as_bytes(),
        )
        .map_err(|e| parse_error("P-256")(&e))?;
        Ok(Self::new(
            Algorithm::ES256,
            Signer::Es(signer),
            json!({ "crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y) }),
        ))
    }

    fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(KeyError::RsaTooShort(bits));
        }
        let der = key.to_pkcs1_der().map_err(|e| parse_error("RSA")(&e))?;
        let signer =
            signature::RsaKeyPair::from_der(der.as_bytes()).map_err(|e| parse_error("RSA")(&e))?;
        Ok(Self::new(
            Algorithm::RS256,
            Signer::Rs(signer),
            json!({ "e": b64(&key.e().to_bytes_be()), "kty": "RSA", "n": b64(&key.n().to_bytes_be()) }),
        ))
    }

    fn new(algorithm: Algorithm, signer: Signer, required_members: Value) -> Self {
        let public_members = match required_members {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let kid = thumbprint(&public_members);
        let header = json!({
            "alg": algorithm,
            "kid": kid,
            "typ": oauth::claims::ACCESS_TOKEN_TYPE,
        });
        Self {
            encoded_header: b64(header.to_string().as_bytes()),
            kid,
            algorithm,
            signer,
            public_members,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A compact JWS (RFC 7515 §7.1) of `claims` with this key's header: `typ` at+jwt, `alg`,
    /// `kid`.
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|err| KeyError::Sign(err.to_string()))?;
        // Header, payload and the longest signature (RS256: 342 characters) in one allocation.
        let mut token =
            String::with_capacity(self.encoded_header.len() + payload.len().div_ceil(3) * 4 + 346);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.signer.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// The public JWK (RFC 7517) with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public_members.clone();
        jwk.insert("kid".into(), Value::String(self.kid.clone()));
        jwk.insert("alg".into(), json!(self.algorithm));
        jwk.insert("use".into(), Value::String("sig".into()));
        Value::Object(jwk)
    }
}

/// The keys the authorization server publishes, and the one it signs with. Every published key may
/// still verify a live token (or is about to sign); the JWKS is built once per set.
#[derive(Debug)]
pub struct KeySet {
    active: SigningKey,
    jwks: Value,
}

/// The name of the file, in a key directory, that holds the file name of the active key.
pub const ACTIVE_FILE: &str = "ACTIVE";

impl KeySet {
    pub fn single(key: SigningKey) -> Self {
        Self::new(key, Vec::new())
    }

    fn new(active: SigningKey, others: Vec<SigningKey>) -> Self {
        let mut keys: Vec<Value> = std::iter::once(&active)
            .chain(&others)
            .map(SigningKey::public_jwk)
            .collect();
        keys.dedup_by(|a, b| a["kid"] == b["kid"]);
        Self {
            active,
            jwks: json!({ "keys": keys }),
        }
    }

    /// Loads every `*.pem` of `dir` (all of `algorithm`'s type); the active one is named by the
    /// `ACTIVE` file, or is the only key. Fails whole: a set is never half-loaded.
    pub fn load_dir(dir: &std::path::Path, algorithm: Algorithm) -> Result<Self, KeyError> {
        let io = |what: &str, err: std::io::Error| KeyError::Dir(format!("{what}: {err}"));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|err| io(&dir.display().to_string(), err))?
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".pem"))
            .collect();
        names.sort();
        let active_name = match std::fs::read_to_string(dir.join(ACTIVE_FILE)) {
            Ok(content) => content.trim().to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && names.len() == 1 => {
                names[0].clone()
            }
            Err(err) => return Err(io(ACTIVE_FILE, err)),
        };
        if !names.contains(&active_name) {
            return Err(KeyError::Dir(format!(
                "{ACTIVE_FILE} names {active_name:?}, which is not a .pem file of the directory"
            )));
        }
        let mut active = None;
        let mut others = Vec::new();
        for name in names {
            common::secret_file::check_private(&dir.join(&name))
                .map_err(|err| KeyError::Dir(format!("{name}: {err}")))?;
            let pem = std::fs::read_to_string(dir.join(&name)).map_err(|err| io(&name, err))?;
            let key = SigningKey::from_pem(algorithm, &pem)
                .map_err(|err| KeyError::Dir(format!("{name}: {err}")))?;
            if name == active_name {
                active = Some(key);
            } else {
                others.push(key);
            }
        }
        let active = active.ok_or_else(|| KeyError::Dir("no active key".into()))?;
        Ok(Self::new(active, others))
    }

    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// `{"keys":[…]}`: the active key first, then the others.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    pub fn kids(&self) -> Vec<&str> {
        self.jwks["keys"]
            .as_array()
            .map(|keys| keys.iter().filter_map(|k| k["kid"].as_str()).collect())
            .unwrap_or_default()
    }
}

/// The current key set, swapped whole when the key directory changes.
#[derive(Debug)]
pub struct KeyRing(std::sync::RwLock<std::sync::Arc<KeySet>>);

impl KeyRing {
    pub fn new(set: KeySet) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(set)))
    }

    pub fn current(&self) -> std::sync::Arc<KeySet> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn replace(&self, set: KeySet) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = std::sync::Arc::new(set);
    }
}

/// The RFC 7638 thumbprint: SHA-256 over the required members, in lexicographic order, without
/// whitespace. `serde_json`'s map keeps keys sorted, which is exactly that order.
fn thumbprint(required_members: &Map<String, Value>) -> String {
    let canonical = Value::Object(required_members.clone()).to_string();
    b64(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{decode, decode_header, jwk::Jwk, DecodingKey, Validation};

    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let members = json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        });
        let Value::Object(members) = members else {
            unreachable!()
        };
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    fn round_trip(key: &SigningKey) {
        let token = key.sign_jwt(&json!({"sub": "alice"})).unwrap();
        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, key.algorithm());
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk: Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let mut validation = Validation::new(key.algorithm());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let decoded = decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation);
        assert_eq!(decoded.unwrap().claims["sub"], "alice");
    }

    #[test]
    fn every_algorithm_signs_what_its_published_jwk_verifies() {
        for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            let key = SigningKey::generate(algorithm).unwrap();
            round_trip(&key);
            let jwk = key.public_jwk();
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["kid"], key.kid());
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(
                    jwk.get(private).is_none(),
                    "{algorithm:?} publishes {private}"
                );
            }
        }
    }

    #[test]
    fn a_pem_key_has_a_stable_kid() {
        // `openssl genpkey -algorithm ed25519`
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB239XB79YpCyor5Y7sVZlrGt5D9ZEu91fFcIVmaYkge\n-----END PRIVATE KEY-----\n";
        let a = SigningKey::from_pem(Algorithm::EdDSA, pem).unwrap();
        let b = SigningKey::from_pem(Algorithm::EdDSA, pem).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.public_jwk(), b.public_jwk());
        round_trip(&a);
    }

    #[test]
    fn a_key_of_the_wrong_type_is_refused() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB239XB79YpCyor5Y7sVZlrGt5D9ZEu91fFcIVmaYkge\n-----END PRIVATE KEY-----\n";
        assert!(SigningKey::from_pem(Algorithm::ES256, pem).is_err());
        assert!(SigningKey::from_pem(Algorithm::EdDSA, "not a pem").is_err());
        assert!(SigningKey::generate(Algorithm::HS256).is_err());
    }

    /// Each format a key may come in gives the same key: the same `kid`, and tokens its JWK
    /// verifies.
    fn same_key(algorithm: Algorithm, pems: &[String]) {
        let keys: Vec<SigningKey> = pems
            .iter()
            .map(|pem| SigningKey::from_pem(algorithm, pem).unwrap())
            .collect();
        for key in &keys {
            assert_eq!(key.kid(), keys[0].kid());
            round_trip(key);
        }
    }

    #[test]
    fn a_p256_key_reads_as_pkcs8_and_as_sec1() {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pkcs8 = secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap().to_string();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        same_key(Algorithm::ES256, &[pkcs8, sec1]);
    }

    #[test]
    fn an_rsa_key_reads_as_pkcs8_and_as_pkcs1() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, MIN_RSA_BITS).unwrap();
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        same_key(Algorithm::RS256, &[pkcs8, pkcs1]);
    }

    #[test]
    fn an_rsa_key_under_2048_bits_is_refused() {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(matches!(
            SigningKey::from_pem(Algorithm::RS256, &pem),
            Err(KeyError::RsaTooShort(1024))
        ));
    }
}
