//! How fast one address may be issued authorization codes. `/authorize` needs no login here (every
//! user is granted), so an unauthenticated caller could ask for codes as fast as the server makes
//! them; each is held until redeemed or expired. A GCRA limiter per address (governor) keeps one
//! address from taking the store's whole room (`MAX_LIVE_CODES`) away from the others.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Codes an address may be issued per second, and how many at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizeRate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

pub struct AuthorizeRateLimit {
    limiter: RateLimiter<
        IpAddr,
        DefaultKeyedStateStore<IpAddr>,
        InjectedClock,
        NoOpMiddleware<Duration>,
    >,
    clock: Arc<dyn Clock>,
    /// The second (since the epoch) of the last pass that dropped idle addresses.
    last_cleanup: AtomicU64,
}

/// The limiter runs on the service's clock, so tests move time instead of sleeping.
struct InjectedClock(Arc<dyn Clock>);

impl governor::clock::Clock for InjectedClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.since_epoch()
    }
}

impl AuthorizeRateLimit {
    pub fn new(rate: AuthorizeRate, clock: Arc<dyn Clock>) -> Self {
        let quota = Quota::per_second(rate.per_second).allow_burst(rate.burst);
        Self {
            limiter: RateLimiter::new(
                quota,
                DefaultKeyedStateStore::default(),
                InjectedClock(clock.clone()),
            ),
            last_cleanup: AtomicU64::new(clock.since_epoch().as_secs()),
            clock,
        }
    }

    /// Whether `peer` may be issued one more code now (which counts it).
    pub fn allow(&self, peer: IpAddr) -> bool {
        self.forget_idle_addresses();
        self.limiter.check_key(&common::peer::source(peer)).is_ok()
    }

    /// Once a second, addresses whose budget is full again are forgotten: the table holds the
    /// addresses of the last burst's worth of time, not every address ever seen.
    fn forget_idle_addresses(&self) {
        let second = self.clock.since_epoch().as_secs();
        let last = self.last_cleanup.load(Ordering::Relaxed);
        if second > last
            && self
                .last_cleanup
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use common::clock::ManualClock;

    use super::*;

    fn limit(per_second: u32, burst: u32) -> (AuthorizeRateLimit, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        let rate = AuthorizeRate {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        };
        (AuthorizeRateLimit::new(rate, clock.clone()), clock)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn past_its_burst_an_address_waits_for_its_rate_while_others_are_served() {
        let (limit, clock) = limit(10, 3);
        let attacker = ip("127.0.0.2");
        for _ in 0..3 {
            assert!(limit.allow(attacker));
        }
        assert!(!limit.allow(attacker));
        assert!(limit.allow(ip("127.0.0.1")));
        // one code per 100 ms: not a millisecond before
        clock.advance(Duration::from_millis(99));
        assert!(!limit.allow(attacker));
        clock.advance(Duration::from_millis(1));
        assert!(limit.allow(attacker));
        assert!(!limit.allow(attacker));
    }

    #[test]
    fn an_ipv6_host_has_one_budget_for_its_whole_64() {
        let (limit, _clock) = limit(10, 1);
        assert!(limit.allow(ip("2001:db8:1:2::1")));
        assert!(!limit.allow(ip("2001:db8:1:2:ffff::7")));
        assert!(limit.allow(ip("2001:db8:1:3::1")));
        // an IPv4-mapped address is its IPv4 address
        assert!(limit.allow(ip("192.0.2.1")));
        assert!(!limit.allow(ip("::ffff:192.0.2.1")));
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let (limit, clock) = limit(10, 5);
        for i in 0..200u8 {
            assert!(limit.allow(IpAddr::from([10, 0, 0, i])));
        }
        assert_eq!(limit.addresses(), 200);
        clock.advance(Duration::from_secs(2));
        assert!(limit.allow(ip("127.0.0.1")));
        assert_eq!(limit.addresses(), 1);
    }
}
