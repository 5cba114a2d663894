use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time, injected so expiry rules can be tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;

    /// Time since the Unix epoch with sub-second precision (zero if the clock is before 1970).
    fn since_epoch(&self) -> Duration {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use manual::{advance_timers, ManualClock};

/// Only for tests (feature `test-support`): no service binary has a clock that can be moved.
#[cfg(any(test, feature = "test-support"))]
mod manual {
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use super::Clock;

    /// A clock that only moves when told to.
    #[derive(Debug)]
    pub struct ManualClock(Mutex<SystemTime>);

    impl ManualClock {
        pub fn new(start: SystemTime) -> Self {
            Self(Mutex::new(start))
        }

        pub fn advance(&self, by: Duration) {
            let mut now = self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *now += by;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> SystemTime {
            *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// Moves Tokio's clock (its timers and intervals, not a [`ManualClock`]) past `by`, and lets
    /// the tasks that this wakes run. Paused only for the jump: with real sockets, a clock left
    /// paused jumps by itself whenever the runtime waits on them. Needs a current-thread runtime
    /// (`#[tokio::test]`'s).
    pub async fn advance_timers(by: Duration) {
        // The tasks woken by the I/O so far arm their timers first (a connection just accepted).
        settle().await;
        tokio::time::pause();
        // A millisecond over: Tokio's timers fire on whole milliseconds, deadlines rounded up.
        tokio::time::advance(by + Duration::from_millis(1)).await;
        tokio::time::resume();
        settle().await;
    }

    /// Yields often enough for the tasks woken so far, and those they wake, to run.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
}
