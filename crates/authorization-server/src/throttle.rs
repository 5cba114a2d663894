//! Slows down guessing of the client secret (RFC 6749 §2.3.1, RFC 9700 §4.x: "protect against
//! brute force"). Failures are counted per client *and source address*: past a few failures from
//! one address, that address must wait before its next attempt for this client, whatever it sends,
//! so that the answer never tells a good guess from a bad one. The wait doubles with every further
//! failure, up to a cap. Another address is not affected, so an attacker cannot lock the real
//! client out from elsewhere; one success clears the count.
//!
//! What an unauthenticated caller can make it hold is small and fixed. The claimed client id is
//! never kept: an entry is for the registered client or for "any other id" (there is no secret to
//! guess for an id nobody registered), so junk ids from one address make one entry, whatever
//! their number and length. Entries are forgotten after [`FORGET_AFTER`] without failures, and at
//! most [`MAX_TRACKED`] are kept: when the table is full, the oldest quarter of the entries *not
//! waiting out a lock* makes room at once (so a flood costs constant time per failure), and junk
//! failures cannot push out a lock before it ends. A table full of running locks records no new
//! entry until one ends (and says so in the log).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Failures after which the address must wait before its next attempt.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait between two attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
pub const MAX_TRACKED: usize = 10_000;

/// Whether the claimed client id is the registered one, and the source ([`common::peer::source`]:
/// an IPv6 host is its /64).
type Key = (bool, IpAddr);

#[derive(Debug)]
pub struct ClientAuthThrottle {
    entries: Mutex<HashMap<Key, Entry>>,
    registered_id: String,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: SystemTime,
    blocked_until: SystemTime,
}

impl ClientAuthThrottle {
    /// A throttle for the client registered as `registered_id`.
    pub fn new(registered_id: &str) -> Self {
        Self {
            entries: Mutex::default(),
            registered_id: registered_id.to_owned(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn key(&self, client_id: &str, peer: IpAddr) -> Key {
        (client_id == self.registered_id, common::peer::source(peer))
    }

    /// `Err(wait)` when this address must wait before trying this client's secret again.
    pub fn check(&self, client_id: &str, peer: IpAddr, now: SystemTime) -> Result<(), Duration> {
        let entries = self.lock();
        // The usual case, every token request: nothing has failed.
        if entries.is_empty() {
            return Ok(());
        }
        match entries.get(&self.key(client_id, peer)) {
            Some(entry) if now < entry.blocked_until => {
                Err(entry.blocked_until.duration_since(now).unwrap_or_default())
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, client_id: &str, peer: IpAddr, now: SystemTime) {
        let key = self.key(client_id, peer);
        let mut entries = self.lock();
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&key) {
            entries.retain(|_, entry| since(entry.last_failure, now) < FORGET_AFTER);
            if entries.len() >= MAX_TRACKED && !make_room(&mut entries, now) {
                tracing::warn!(
                    tracked = entries.len(),
                    "the client-authentication throttle is full of running locks; this failure \
                     is not recorded"
                );
                return;
            }
        }
        let entry = entries.entry(key).or_insert(Entry {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        if since(entry.last_failure, now) >= FORGET_AFTER {
            entry.failures = 0;
        }
        entry.failures += 1;
        entry.last_failure = now;
        entry.blocked_until = now + wait_after(entry.failures);
    }

    pub fn record_success(&self, client_id: &str, peer: IpAddr) {
        let mut entries = self.lock();
        if !entries.is_empty() {
            entries.remove(&self.key(client_id, peer));
        }
    }
}

/// Drops the oldest quarter of the entries not waiting out a lock (at least one); false when every
/// entry is a running lock.
fn make_room(entries: &mut HashMap<Key, Entry>, now: SystemTime) -> bool {
    let mut unlocked: Vec<(SystemTime, Key)> = entries
        .iter()
        .filter(|(_, entry)| entry.blocked_until <= now)
        .map(|(key, entry)| (entry.last_failure, *key))
        .collect();
    if unlocked.is_empty() {
        return false;
    }
    let count = (MAX_TRACKED / 4).clamp(1, unlocked.len());
    unlocked.select_nth_unstable(count - 1);
    for (_, key) in &unlocked[..count] {
        entries.remove(key);
    }
    true
}

/// Time from `earlier` to `now`; zero if the clock went backwards.
fn since(earlier: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(earlier).unwrap_or_default()
}

/// The wait after the `failures`-th failure: none before the [`FREE_FAILURES`]-th, then 1 s,
/// 2 s, 4 s, … up to [`MAX_WAIT`].
fn wait_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(excess) => Duration::from_secs(1u64 << excess.min(6)).min(MAX_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 66));
    const WEBAPP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn the_wait_grows_then_caps() {
        let waits: Vec<u64> = (1..=14).map(|n| wait_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }

    #[test]
    fn an_address_that_keeps_failing_must_wait() {
        let throttle = ClientAuthThrottle::new("1234");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.check("1234", ATTACKER, now), Ok(()));
            throttle.record_failure("1234", ATTACKER, now);
        }
        // five failures, then a wait before the next attempt
        assert_eq!(
            throttle.check("1234", ATTACKER, now),
            Err(Duration::from_secs(1))
        );
        let later = now + Duration::from_secs(1);
        assert_eq!(throttle.check("1234", ATTACKER, later), Ok(()));
    }

    #[test]
    fn the_real_client_elsewhere_is_not_locked_out() {
        let throttle = ClientAuthThrottle::new("1234");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for _ in 0..50 {
            throttle.record_failure("1234", ATTACKER, now);
        }
        assert!(throttle.check("1234", ATTACKER, now).is_err());
        assert_eq!(throttle.check("1234", WEBAPP, now), Ok(()));
    }

    #[test]
    fn an_ipv6_host_cannot_escape_a_lock_by_changing_address_within_its_64() {
        let throttle = ClientAuthThrottle::new("1234");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let address = |text: &str| text.parse::<IpAddr>().unwrap();
        for i in 0..=FREE_FAILURES {
            throttle.record_failure("1234", address(&format!("2001:db8::{i}")), now);
        }
        assert!(throttle
            .check("1234", address("2001:db8::ffff"), now)
            .is_err());
        assert_eq!(
            throttle.check("1234", address("2001:db8:0:1::1"), now),
            Ok(())
        );
    }

    #[test]
    fn a_success_clears_the_count_and_time_forgets_it() {
        let throttle = ClientAuthThrottle::new("1234");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for _ in 0..FREE_FAILURES + 1 {
            throttle.record_failure("1234", WEBAPP, now);
        }
        throttle.record_success("1234", WEBAPP);
        assert_eq!(throttle.check("1234", WEBAPP, now), Ok(()));

        for _ in 0..FREE_FAILURES {
            throttle.record_failure("1234", ATTACKER, now);
        }
        throttle.record_failure("1234", ATTACKER, now + FORGET_AFTER);
        assert_eq!(throttle.check("1234", ATTACKER, now + FORGET_AFTER), Ok(()));
    }

    #[test]
    fn memory_stays_bounded() {
        let throttle = ClientAuthThrottle::new("1234");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from(i));
            throttle.record_failure("1234", peer, now);
        }
        assert!(throttle.lock().len() <= MAX_TRACKED);
    }

    /// 100,000 failures with distinct 16 KB client ids from one address: one entry for all of
    /// them (no id is kept), and the lock of the real client id from that address stays.
    #[test]
    fn junk_client_ids_neither_grow_the_table_nor_lift_a_lock() {
        let throttle = ClientAuthThrottle::new("1234");
        let mut now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for _ in 0..8 {
            throttle.record_failure("1234", ATTACKER, now);
        }
        // locked for 8 s after the 8th failure
        let lock_ends = now + wait_after(8);
        let mut junk = "j".repeat(16 * 1024);
        for i in 0..100_000u32 {
            junk.replace_range(..10, &format!("{i:010}"));
            throttle.record_failure(&junk, ATTACKER, now);
            if i % 10_000 == 0 {
                now += Duration::from_millis(500);
                if now < lock_ends {
                    assert!(
                        throttle.check("1234", ATTACKER, now).is_err(),
                        "the lock was lifted after {i} junk failures"
                    );
                }
            }
        }
        assert_eq!(
            throttle.lock().len(),
            2,
            "the real client's entry and the junk one"
        );
        assert!(throttle.check("1234", ATTACKER, now).is_err());
    }

    /// From many addresses: a full table makes room among the entries without a running lock,
    /// never by lifting one; full of locks, it records nothing new.
    #[test]
    fn a_table_full_of_locks_keeps_them() {
        let throttle = ClientAuthThrottle::new("1234");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..MAX_TRACKED as u32 {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from(i));
            for _ in 0..FREE_FAILURES {
                throttle.record_failure("1234", peer, now);
            }
        }
        let newcomer = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));
        throttle.record_failure("1234", newcomer, now);
        assert_eq!(throttle.lock().len(), MAX_TRACKED);
        let first = IpAddr::V4(std::net::Ipv4Addr::from(0));
        assert!(throttle.check("1234", first, now).is_err());

        // once the locks have run out, the oldest quarter makes room for a newcomer
        let later = now + MAX_WAIT;
        throttle.record_failure("1234", newcomer, later);
        assert_eq!(throttle.lock().len(), MAX_TRACKED - MAX_TRACKED / 4 + 1);
    }
}
