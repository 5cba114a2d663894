//! Where authorization codes wait to be redeemed. Codes are stored under their SHA-256 hash, so a
//! dump of the store yields no usable code, and taken out by one atomic operation, so a code can be
//! redeemed at most once however many requests race for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{Scope, UserName};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pkce::CodeChallenge;

/// What an authorization code stands for: everything the code is bound to (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user: UserName,
    pub scope: Scope,
    pub resource: String,
    pub code_challenge: CodeChallenge,
}

/// A fresh authorization code: 256 bits from the operating system's CSPRNG (RFC 6749 §10.10 asks
/// for at least 128).
pub fn new_code() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key a code is stored under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeHash(String);

impl CodeHash {
    pub fn of(code: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What taking a code out of the store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The code was live; it is now spent.
    Redeemed(Grant),
    /// The code was redeemed before: a replay.
    AlreadyRedeemed,
    Expired,
    Unknown,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Keeps `grant` under `code` until `now + ttl`.
    async fn put(
        &self,
        code: &CodeHash,
        grant: Grant,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Atomically takes the grant of `code` out of the store (at most once).
    async fn take(&self, code: &CodeHash, now: SystemTime) -> Result<Redemption, StoreError>;

    /// Whether the store can serve requests now (for the readiness probe).
    async fn check(&self) -> Result<(), StoreError>;
}

#[derive(Debug)]
enum Entry {
    Live(Grant),
    /// Kept until the code would have expired, so that a replay is recognised and counted.
    Spent,
}

/// The in-memory store of one authorization-server instance.
#[derive(Debug, Default)]
pub struct MemoryCodeStore {
    entries: Mutex<MemoryEntries>,
}

#[derive(Debug, Default)]
struct MemoryEntries {
    by_code: HashMap<CodeHash, (Entry, SystemTime)>,
    last_sweep: Option<SystemTime>,
}

/// How often expired entries are swept out: keeps memory bounded by the codes of the last TTL.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl MemoryEntries {
    fn sweep_if_due(&mut self, now: SystemTime) {
        let due = self
            .last_sweep
            .is_none_or(|last| now.duration_since(last).unwrap_or_default() >= SWEEP_EVERY);
        if due {
            self.by_code.retain(|_, (_, expires_at)| now < *expires_at);
            self.last_sweep = Some(now);
        }
    }
}

impl MemoryCodeStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryEntries> {
        // A poisoned lock only means another request panicked mid-operation; each operation
        // leaves the map consistent, so keep serving.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_code.len()
    }
}

#[async_trait]
impl CodeStore for MemoryCodeStore {
    async fn put(
        &self,
        code: &CodeHash,
        grant: Grant,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut entries = self.lock();
        entries.sweep_if_due(now);
        entries
            .by_code
            .insert(code.clone(), (Entry::Live(grant), now + ttl));
        Ok(())
    }

    async fn take(&self, code: &CodeHash, now: SystemTime) -> Result<Redemption, StoreError> {
        let mut entries = self.lock();
        let Some((entry, expires_at)) = entries.by_code.get_mut(code) else {
            return Ok(Redemption::Unknown);
        };
        if now >= *expires_at {
            entries.by_code.remove(code);
            return Ok(Redemption::Expired);
        }
        Ok(match std::mem::replace(entry, Entry::Spent) {
            Entry::Live(grant) => Redemption::Redeemed(grant),
            Entry::Spent => Redemption::AlreadyRedeemed,
        })
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn grant() -> Grant {
        Grant {
            client_id: "1234".into(),
            redirect_uri: "http://localhost:8080/callback".into(),
            user: UserName::parse("alice").unwrap(),
            scope: Scope::EpochTime,
            resource: "http://localhost:8082/epoch_time".into(),
            code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                .unwrap(),
        }
    }

    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn codes_are_long_random_and_distinct() {
        let (a, b) = (new_code(), new_code());
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn the_store_key_is_not_the_code() {
        let code = new_code();
        assert_ne!(CodeHash::of(&code).as_str(), code);
        assert_eq!(CodeHash::of(&code), CodeHash::of(&code));
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_then_seen_as_a_replay() {
        let store = MemoryCodeStore::new();
        let now = SystemTime::now();
        let code = CodeHash::of("c");
        store.put(&code, grant(), now, TTL).await.unwrap();
        assert_eq!(
            store.take(&code, now).await.unwrap(),
            Redemption::Redeemed(grant())
        );
        assert_eq!(
            store.take(&code, now).await.unwrap(),
            Redemption::AlreadyRedeemed
        );
        assert_eq!(
            store.take(&CodeHash::of("other"), now).await.unwrap(),
            Redemption::Unknown
        );
    }

    #[tokio::test]
    async fn a_code_expires_at_its_ttl_exactly() {
        let store = MemoryCodeStore::new();
        let now = SystemTime::now();
        let (early, late) = (CodeHash::of("early"), CodeHash::of("late"));
        store.put(&early, grant(), now, TTL).await.unwrap();
        store.put(&late, grant(), now, TTL).await.unwrap();
        let almost = now + TTL - Duration::from_millis(1);
        assert!(matches!(
            store.take(&early, almost).await.unwrap(),
            Redemption::Redeemed(_)
        ));
        assert_eq!(
            store.take(&late, now + TTL).await.unwrap(),
            Redemption::Expired
        );
    }

    #[tokio::test]
    async fn expired_entries_are_swept() {
        let store = MemoryCodeStore::new();
        let now = SystemTime::now();
        for i in 0..10 {
            store
                .put(&CodeHash::of(&i.to_string()), grant(), now, TTL)
                .await
                .unwrap();
        }
        let later = now + TTL + SWEEP_EVERY;
        store
            .put(&CodeHash::of("new"), grant(), later, TTL)
            .await
            .unwrap();
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_redemptions_of_one_code_yield_one_success() {
        let store = Arc::new(MemoryCodeStore::new());
        let now = SystemTime::now();
        let code = CodeHash::of("raced");
        store.put(&code, grant(), now, TTL).await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (store, code) = (store.clone(), code.clone());
                tokio::spawn(async move { store.take(&code, now).await.unwrap() })
            })
            .collect();
        let mut redeemed = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Redemption::Redeemed(_)) {
                redeemed += 1;
            }
        }
        assert_eq!(redeemed, 1);
    }
}
