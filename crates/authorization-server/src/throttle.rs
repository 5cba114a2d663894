//! Slows down guessing of the client secret (RFC 6749 §2.3.1, RFC 9700 §4.x: "protect against
//! brute force"). Failures are counted per client *and source address*: past a few failures from
//! one address, that address must wait before its next attempt for this client, whatever it sends,
//! so that the answer never tells a good guess from a bad one. The wait doubles with every further
//! failure, up to a cap. Another address is not affected, so an attacker cannot lock the real
//! client out from elsewhere; one success clears the count. Entries are forgotten after
//! [`FORGET_AFTER`] without failures, and at most [`MAX_TRACKED`] are kept.

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

#[derive(Debug, Default)]
pub struct ClientAuthThrottle {
    entries: Mutex<HashMap<(String, IpAddr), Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: SystemTime,
    blocked_until: SystemTime,
}

impl ClientAuthThrottle {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpAddr), Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err(wait)` when this address must wait before trying this client's secret again.
    pub fn check(&self, client_id: &str, peer: IpAddr, now: SystemTime) -> Result<(), Duration> {
        let entries = self.lock();
        // The usual case, every token request: nothing has failed. Skip building the owned key.
        if entries.is_empty() {
            return Ok(());
        }
        match entries.get(&(client_id.to_owned(), peer)) {
            Some(entry) if now < entry.blocked_until => {
                Err(entry.blocked_until.duration_since(now).unwrap_or_default())
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, client_id: &str, peer: IpAddr, now: SystemTime) {
        let mut entries = self.lock();
        if entries.len() >= MAX_TRACKED {
            entries.retain(|_, entry| since(entry.last_failure, now) < FORGET_AFTER);
            if entries.len() >= MAX_TRACKED {
                // Still full: forget the oldest, rather than grow without bound.
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.last_failure)
                    .map(|(key, _)| key.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        let entry = entries
            .entry((client_id.to_owned(), peer))
            .or_insert(Entry {
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
            entries.remove(&(client_id.to_owned(), peer));
        }
    }
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
        let throttle = ClientAuthThrottle::new();
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
        let throttle = ClientAuthThrottle::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for _ in 0..50 {
            throttle.record_failure("1234", ATTACKER, now);
        }
        assert!(throttle.check("1234", ATTACKER, now).is_err());
        assert_eq!(throttle.check("1234", WEBAPP, now), Ok(()));
    }

    #[test]
    fn a_success_clears_the_count_and_time_forgets_it() {
        let throttle = ClientAuthThrottle::new();
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
        let throttle = ClientAuthThrottle::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from(i));
            throttle.record_failure("1234", peer, now);
        }
        assert!(throttle.lock().len() <= MAX_TRACKED);
    }
}
