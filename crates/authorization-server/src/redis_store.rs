//! The code store shared by several authorization-server replicas: Redis, with the expiry kept by
//! Redis itself and redemption done by one server-side script, so two replicas racing on the same
//! code cannot both win.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::OnceCell;

use crate::store::{CodeHash, CodeStore, Grant, Redemption, StoreError};

/// What a redeemed code's value is replaced with: kept until the code would have expired, so a
/// replay is recognised (and counted) rather than looking like an unknown code.
const SPENT: &str = "spent";

/// Stores a code unless the live codes number `max_live` already. Live codes are indexed in a
/// sorted set scored by expiry (ms since the epoch), so that they can be counted without a scan;
/// expired ones leave the index here, redeemed ones in [`TAKE`].
/// KEYS: the code, the index. ARGV: the grant, the TTL (ms), now (ms), `max_live`.
const PUT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'full' end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 'exists' end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]), KEYS[1])
return 'stored'
";

/// Redeems a code atomically: the grant if live (marking it spent, expiry unchanged, and taking
/// it out of the index of live codes), `spent` on a replay, nil when unknown or expired (Redis
/// drops expired keys, so the two look the same).
/// KEYS: the code, the index. ARGV: the spent marker.
const TAKE: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then return false end
if value == ARGV[1] then return value end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
redis.call('ZREM', KEYS[2], KEYS[1])
return value
";

/// The sorted set of live codes' keys.
const LIVE_INDEX: &str = "oauth:codes:live";

/// A Redis call that takes longer than this fails: an authorization server waiting on a sick
/// Redis would hold every user's call.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

pub struct RedisCodeStore {
    client: redis::Client,
    /// Connected on first use, so the server starts (and answers `/healthz`) while Redis is down;
    /// after that the manager reconnects by itself.
    connection: OnceCell<ConnectionManager>,
    put: Script,
    take: Script,
    max_live: usize,
}

impl RedisCodeStore {
    /// `url` is `redis://` or `rediss://` (TLS, verified against the compiled-in web roots, or
    /// against `ca`, PEM CA certificates, when given); nothing is connected yet. At most
    /// `max_live` codes are live at once, over all the replicas sharing the Redis.
    pub fn new(url: &str, ca: Option<Vec<u8>>, max_live: usize) -> Result<Self, StoreError> {
        let client = match ca {
            Some(root_cert) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            ),
            None => redis::Client::open(url),
        }
        .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        Ok(Self {
            client,
            connection: OnceCell::new(),
            put: Script::new(PUT),
            take: Script::new(TAKE),
            max_live,
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(unavailable)
    }

    fn key(code: &CodeHash) -> String {
        format!("oauth:code:{}", code.to_base64())
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn unavailable(err: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {err}"))
}

#[async_trait]
impl CodeStore for RedisCodeStore {
    async fn put(
        &self,
        code: &CodeHash,
        grant: Grant,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(&grant)
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let mut connection = self.connection().await?;
        let outcome: String = self
            .put
            .key(Self::key(code))
            .key(LIVE_INDEX)
            .arg(value)
            .arg(millis(ttl))
            .arg(millis(now.duration_since(UNIX_EPOCH).unwrap_or_default()))
            .arg(self.max_live)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        match outcome.as_str() {
            "stored" => Ok(()),
            "full" => Err(StoreError::Full(self.max_live)),
            // NX refuses to overwrite: a 256-bit collision, or a bug worth failing loudly on.
            _ => Err(StoreError::Unavailable("the code already exists".into())),
        }
    }

    async fn take(&self, code: &CodeHash, _now: SystemTime) -> Result<Redemption, StoreError> {
        let mut connection = self.connection().await?;
        let value: Option<String> = self
            .take
            .key(Self::key(code))
            .key(LIVE_INDEX)
            .arg(SPENT)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        match value.as_deref() {
            None => Ok(Redemption::Unknown),
            Some(SPENT) => Ok(Redemption::AlreadyRedeemed),
            Some(json) => serde_json::from_str(json)
                .map(Redemption::Redeemed)
                .map_err(|err| {
                    StoreError::Unavailable(format!("a stored grant is unreadable: {err}"))
                }),
        }
    }

    async fn check(&self) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
