//! Where authorization codes wait to be redeemed. Codes are stored under their SHA-256 hash, so a
//! dump of the store yields no usable code, and taken out by one atomic operation, so a code can be
//! redeemed at most once however many requests race for it.

use std::collections::HashMap;
use std::hash::RandomState;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth::{ClientId, RedirectUri, Scope, UserName};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pkce::CodeChallenge;

/// What an authorization code stands for: everything the code is bound to (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
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

/// The key a code is stored under: the raw SHA-256 of the code (32 bytes, no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeHash([u8; 32]);

impl CodeHash {
    pub fn of(code: &str) -> Self {
        Self(Sha256::digest(code.as_bytes()).into())
    }

    /// The hash as base64url text (the Redis key).
    pub fn to_base64(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The first 96 bits: what a spent code is remembered by. Codes are 256 random bits, so an
    /// unknown code taken for a replay has a chance of about n / 2⁹⁶ among n spent codes: never,
    /// in practice, and it would be refused with `invalid_grant` all the same.
    fn spent_key(self) -> SpentKey {
        let mut key = [0u8; 12];
        key.copy_from_slice(&self.0[..12]);
        key
    }
}

type SpentKey = [u8; 12];

/// An expiry in whole seconds since the Unix epoch, rounded up (so a spent marker outlives its
/// code, never the other way round); 4 bytes instead of a 16-byte `SystemTime`.
fn expiry_second(at: SystemTime) -> u32 {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

fn is_past(now: SystemTime, second: u32) -> bool {
    now >= UNIX_EPOCH + Duration::from_secs(second.into())
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
pub enum StoreError {
    /// The store cannot be reached or answered nonsense.
    #[error("{0}")]
    Unavailable(String),
    /// The store holds as many live codes as it may (`MAX_LIVE_CODES`): an unauthenticated caller
    /// can ask for codes faster than anyone redeems them, so their number is capped.
    #[error("the store holds its maximum of {0} live codes")]
    Full(usize),
}

#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Keeps `grant` under `code` until `now + ttl`, unless the store is full.
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

/// The in-memory store of one authorization-server instance.
#[derive(Debug)]
pub struct MemoryCodeStore {
    entries: Mutex<MemoryEntries>,
    max_live: usize,
}

#[derive(Debug, Default)]
struct MemoryEntries {
    /// Codes not redeemed yet, with their expiry. The grant is boxed: the table is made for twice
    /// `MAX_LIVE_CODES` at start, and an inline grant would make it ≈ 24 MiB at the default
    /// instead of ≈ 7 MiB, all of it resident once traffic has touched every slot.
    live: hashbrown::HashMap<CodeHash, (Box<Grant>, SystemTime), RandomState>,
    /// Codes redeemed, kept until they would have expired so that a replay is recognised and
    /// counted (`invalid_grant` either way). Only a truncated hash and the expiry second, 17
    /// bytes a code in the table instead of a `Grant`-sized entry: at thousands of codes a
    /// second, the markers of the last TTL are most of the store.
    spent: HashMap<SpentKey, u32>,
    last_sweep: Option<SystemTime>,
}

/// How often expired entries are swept out: keeps memory bounded by the codes of the last TTL
/// (plus this).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl MemoryEntries {
    fn sweep_if_due(&mut self, now: SystemTime) {
        let due = self
            .last_sweep
            .is_none_or(|last| now.duration_since(last).unwrap_or_default() >= SWEEP_EVERY);
        if due {
            self.live.retain(|_, (_, expires_at)| now < *expires_at);
            self.spent
                .retain(|_, expires_at| !is_past(now, *expires_at));
            self.last_sweep = Some(now);
        }
    }
}

impl MemoryCodeStore {
    /// A store that holds at most `max_live` codes not yet redeemed nor expired. Their table is
    /// made at once with room for twice that, and never grows: at most half full, it clears its
    /// deleted slots in place instead of reallocating, so flood after flood the memory it takes is
    /// fixed (a reallocation would leave the old table's memory behind in the allocator). Pages
    /// are only touched as codes arrive.
    pub fn new(max_live: usize) -> Self {
        let entries = MemoryEntries {
            live: hashbrown::HashMap::with_capacity_and_hasher(
                max_live.saturating_mul(2),
                RandomState::new(),
            ),
            ..MemoryEntries::default()
        };
        Self {
            entries: Mutex::new(entries),
            max_live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryEntries> {
        // A poisoned lock only means another request panicked mid-operation; each operation
        // leaves the maps consistent, so keep serving.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Live and spent entries held.
    #[cfg(test)]
    fn len(&self) -> usize {
        let entries = self.lock();
        entries.live.len() + entries.spent.len()
    }

    /// The bytes the live table has allocated.
    #[cfg(test)]
    fn live_table_bytes(&self) -> usize {
        self.lock().live.allocation_size()
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
        if entries.live.len() >= self.max_live {
            return Err(StoreError::Full(self.max_live));
        }
        entries.live.insert(*code, (Box::new(grant), now + ttl));
        Ok(())
    }

    async fn take(&self, code: &CodeHash, now: SystemTime) -> Result<Redemption, StoreError> {
        let mut entries = self.lock();
        // Redemptions sweep too: a server that only redeems (or only sees replays) stays bounded.
        entries.sweep_if_due(now);
        if let Some((grant, expires_at)) = entries.live.remove(code) {
            if now >= expires_at {
                return Ok(Redemption::Expired);
            }
            entries
                .spent
                .insert(code.spent_key(), expiry_second(expires_at));
            return Ok(Redemption::Redeemed(*grant));
        }
        let spent_key = code.spent_key();
        Ok(match entries.spent.get(&spent_key) {
            Some(expires_at) if is_past(now, *expires_at) => {
                entries.spent.remove(&spent_key);
                Redemption::Expired
            }
            Some(_) => Redemption::AlreadyRedeemed,
            None => Redemption::Unknown,
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
            redirect_uri: RedirectUri::parse("http://localhost:8080/callback").unwrap(),
            user: UserName::parse("alice").unwrap(),
            scope: Scope::EpochTime,
            resource: "http://localhost:8082/epoch_time".into(),
            code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                .unwrap(),
        }
    }

    const TTL: Duration = Duration::from_secs(30);
    const MAX_LIVE: usize = 10_000;

    #[test]
    fn codes_are_long_random_and_distinct() {
        let (a, b) = (new_code(), new_code());
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn the_store_key_is_not_the_code() {
        let code = new_code();
        assert_ne!(CodeHash::of(&code).to_base64(), code);
        assert_eq!(CodeHash::of(&code), CodeHash::of(&code));
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_then_seen_as_a_replay() {
        let store = MemoryCodeStore::new(MAX_LIVE);
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
        let store = MemoryCodeStore::new(MAX_LIVE);
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
        let store = MemoryCodeStore::new(MAX_LIVE);
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

    /// Real parallelism: worker threads released together by a barrier, so that a `take` that
    /// was not one atomic step would let two of them redeem.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_redemptions_of_one_code_yield_one_success() {
        const RACERS: usize = 64;
        let store = Arc::new(MemoryCodeStore::new(MAX_LIVE));
        let now = SystemTime::now();
        let code = CodeHash::of("raced");
        store.put(&code, grant(), now, TTL).await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                let (store, code, start) = (store.clone(), code, start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    store.take(&code, now).await.unwrap()
                })
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

    #[tokio::test]
    async fn a_replay_after_the_code_would_have_expired_is_refused_and_forgotten() {
        let store = MemoryCodeStore::new(MAX_LIVE);
        let now = SystemTime::now();
        let code = CodeHash::of("c");
        store.put(&code, grant(), now, TTL).await.unwrap();
        assert!(matches!(
            store.take(&code, now).await.unwrap(),
            Redemption::Redeemed(_)
        ));
        let almost = now + TTL - Duration::from_millis(1);
        assert_eq!(
            store.take(&code, almost).await.unwrap(),
            Redemption::AlreadyRedeemed
        );
        // Spent markers are kept to the whole second after the code's expiry, then swept: the
        // code is forgotten like any expired one (`invalid_grant` all the same).
        let after = now + TTL + Duration::from_secs(1);
        assert_eq!(store.take(&code, after).await.unwrap(), Redemption::Unknown);
        assert_eq!(store.len(), 0);
    }

    /// Sustained load: codes issued and redeemed at a steady rate for many TTLs. The store holds
    /// at most the codes of the last TTL plus one sweep interval, live or spent, however long
    /// it runs.
    #[tokio::test]
    async fn the_store_stays_bounded_under_sustained_load() {
        const PER_SECOND: u32 = 200;
        const STEPS_PER_SECOND: u32 = 10;
        let store = MemoryCodeStore::new(MAX_LIVE);
        let start = SystemTime::now();
        let step = Duration::from_secs(1) / STEPS_PER_SECOND;
        let per_step = PER_SECOND / STEPS_PER_SECOND;
        // The last TTL's codes, plus those waiting for the next sweep, plus the second a spent
        // marker's expiry is rounded up by, plus one step's codes.
        let window = TTL + SWEEP_EVERY + Duration::from_secs(1);
        let bound = (PER_SECOND as u64 * window.as_secs()) as usize + per_step as usize;
        let mut most = 0;
        for i in 0..(STEPS_PER_SECOND * 4 * TTL.as_secs() as u32) {
            let now = start + step * i;
            for j in 0..per_step {
                let code = CodeHash::of(&format!("{i}-{j}"));
                store.put(&code, grant(), now, TTL).await.unwrap();
                // Every other code is redeemed (a spent marker), the others never are.
                if j % 2 == 0 {
                    assert!(matches!(
                        store.take(&code, now).await.unwrap(),
                        Redemption::Redeemed(_)
                    ));
                }
            }
            most = most.max(store.len());
            assert!(store.len() <= bound, "{} entries at step {i}", store.len());
        }
        // The bound is reached (the test measures something) but never passed.
        assert!(most > (PER_SECOND as u64 * TTL.as_secs()) as usize / 2);
    }

    #[tokio::test]
    async fn past_the_cap_a_code_is_refused_until_one_is_redeemed_or_expires() {
        let store = MemoryCodeStore::new(2);
        let now = SystemTime::now();
        let (a, b, c) = (CodeHash::of("a"), CodeHash::of("b"), CodeHash::of("c"));
        store.put(&a, grant(), now, TTL).await.unwrap();
        store
            .put(&b, grant(), now + Duration::from_secs(5), TTL)
            .await
            .unwrap();
        assert!(matches!(
            store.put(&c, grant(), now, TTL).await,
            Err(StoreError::Full(2))
        ));
        // the refused code was not kept
        assert_eq!(store.take(&c, now).await.unwrap(), Redemption::Unknown);
        // redeeming is unaffected by the cap, and frees a place
        assert!(matches!(
            store.take(&a, now).await.unwrap(),
            Redemption::Redeemed(_)
        ));
        store.put(&c, grant(), now, TTL).await.unwrap();
        assert!(matches!(
            store.put(&CodeHash::of("d"), grant(), now, TTL).await,
            Err(StoreError::Full(2))
        ));
        // expiry frees places too, at the next sweep: c expires, b (issued 5 s later) not yet
        let c_expired = now + TTL + SWEEP_EVERY;
        store
            .put(&CodeHash::of("e"), grant(), c_expired, TTL)
            .await
            .unwrap();
        assert!(matches!(
            store.put(&CodeHash::of("f"), grant(), c_expired, TTL).await,
            Err(StoreError::Full(2))
        ));
    }

    /// The live table is allocated once and never again, whatever the traffic: floods that fill
    /// it and expire, and a full table whose codes are redeemed and replaced one by one (a
    /// redemption may leave a deleted slot behind).
    #[tokio::test]
    async fn the_live_table_never_grows() {
        let store = MemoryCodeStore::new(MAX_LIVE);
        let room = store.live_table_bytes();
        let entry = std::mem::size_of::<(CodeHash, (Box<Grant>, SystemTime))>();
        assert!(room >= 2 * MAX_LIVE * entry);
        // the slot holds a pointer to the grant, not the grant
        assert!(entry <= 64, "{entry} bytes a slot");
        let mut now = SystemTime::now();
        for flood in 0..3 {
            for i in 0..=MAX_LIVE {
                let code = CodeHash::of(&format!("{flood}-{i}"));
                let stored = store.put(&code, grant(), now, TTL).await;
                assert_eq!(stored.is_ok(), i < MAX_LIVE, "code {i} of flood {flood}");
            }
            assert_eq!(store.live_table_bytes(), room, "flood {flood}");
            now += TTL + SWEEP_EVERY;
        }
        store
            .put(&CodeHash::of("0"), grant(), now, TTL)
            .await
            .unwrap();
        for i in 1..4 * MAX_LIVE {
            let taken = store.take(&CodeHash::of(&(i - 1).to_string()), now).await;
            assert!(matches!(taken.unwrap(), Redemption::Redeemed(_)));
            let code = CodeHash::of(&i.to_string());
            store.put(&code, grant(), now, TTL).await.unwrap();
            assert_eq!(store.live_table_bytes(), room, "after {i} codes");
        }
    }
}
