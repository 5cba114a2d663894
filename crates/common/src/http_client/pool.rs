//! The client's idle connections, kept per origin, the most recently used taken first.
//! hyper-util's pool hashes the origin with SipHash and boxes its futures on every checkout; a
//! service has two or three origins, found faster by comparing them (docs/performance.md).
//!
//! What the pool holds is bounded: the origins are the service's configured URLs, never a caller's,
//! and each keeps at most [`MAX_IDLE_PER_ORIGIN`] connections.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};

/// The most idle connections kept for one origin; one more is closed when its call ends.
pub(crate) const MAX_IDLE_PER_ORIGIN: usize = 256;

pub(crate) struct Pool<T> {
    origins: Mutex<Vec<Origin<T>>>,
    /// How long a connection may wait for its next call.
    idle_timeout: Duration,
}

struct Origin<T> {
    scheme: Scheme,
    authority: Authority,
    idle: Vec<(T, Instant)>,
}

impl<T> Origin<T> {
    /// Byte for byte: the URLs are the service's own, so a case difference only costs a second
    /// entry, while `Authority`'s own comparison folds case a character at a time.
    fn is(&self, scheme: &Scheme, authority: &Authority) -> bool {
        self.authority.as_str() == authority.as_str() && self.scheme == *scheme
    }
}

impl<T> Pool<T> {
    pub(crate) fn new(idle_timeout: Duration) -> Self {
        Self {
            origins: Mutex::new(Vec::new()),
            idle_timeout,
        }
    }

    /// The most recently returned connection to this origin that has waited less than the idle
    /// timeout at `now`; older ones are dropped (closed) on the way.
    pub(crate) fn take(&self, scheme: &Scheme, authority: &Authority, now: Instant) -> Option<T> {
        let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        let origin = origins
            .iter_mut()
            .find(|origin| origin.is(scheme, authority))?;
        while let Some((connection, since)) = origin.idle.pop() {
            if now.saturating_duration_since(since) < self.idle_timeout {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next call to this origin, unless the origin already has
    /// [`MAX_IDLE_PER_ORIGIN`] waiting: then it is dropped.
    pub(crate) fn put(&self, scheme: &Scheme, authority: &Authority, connection: T, now: Instant) {
        let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match origins
            .iter()
            .position(|origin| origin.is(scheme, authority))
        {
            Some(index) => index,
            None => {
                origins.push(Origin {
                    scheme: scheme.clone(),
                    authority: authority.clone(),
                    idle: Vec::new(),
                });
                origins.len() - 1
            }
        };
        let idle = &mut origins[index].idle;
        if idle.len() < MAX_IDLE_PER_ORIGIN {
            idle.push((connection, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn origin(uri: &str) -> (Scheme, Authority) {
        let uri: http::Uri = uri.parse().unwrap();
        (
            uri.scheme().unwrap().clone(),
            uri.authority().unwrap().clone(),
        )
    }

    #[test]
    fn the_last_returned_connection_of_the_same_origin_is_taken_first() {
        let pool = Pool::new(TIMEOUT);
        let now = Instant::now();
        let (https, a) = origin("https://a.example:8081");
        let (http, _) = origin("http://a.example:8081");
        let (_, b) = origin("https://b.example:8081");
        pool.put(&https, &a, 1, now);
        pool.put(&https, &a, 2, now);
        pool.put(&https, &b, 3, now);
        assert_eq!(
            pool.take(&http, &a, now),
            None,
            "another scheme is another origin"
        );
        assert_eq!(pool.take(&https, &a, now), Some(2));
        assert_eq!(pool.take(&https, &a, now), Some(1));
        assert_eq!(pool.take(&https, &a, now), None);
        assert_eq!(pool.take(&https, &b, now), Some(3));
    }

    #[test]
    fn a_connection_idle_for_the_timeout_is_dropped_not_taken() {
        let pool = Pool::new(TIMEOUT);
        let start = Instant::now();
        let (scheme, authority) = origin("http://a.example");
        pool.put(&scheme, &authority, "old", start);
        pool.put(&scheme, &authority, "fresh", start + Duration::from_secs(3));
        let later = start + TIMEOUT + Duration::from_millis(1);
        assert_eq!(pool.take(&scheme, &authority, later), Some("fresh"));
        assert_eq!(
            pool.take(&scheme, &authority, later),
            None,
            "the old one was dropped"
        );
        pool.put(&scheme, &authority, "edge", start);
        assert_eq!(pool.take(&scheme, &authority, start + TIMEOUT), None);
    }

    #[test]
    fn an_origin_keeps_at_most_the_bound() {
        let pool = Pool::new(TIMEOUT);
        let now = Instant::now();
        let (scheme, authority) = origin("http://a.example");
        for n in 0..MAX_IDLE_PER_ORIGIN + 10 {
            pool.put(&scheme, &authority, n, now);
        }
        let mut taken = 0;
        while pool.take(&scheme, &authority, now).is_some() {
            taken += 1;
        }
        assert_eq!(taken, MAX_IDLE_PER_ORIGIN);
    }
}
