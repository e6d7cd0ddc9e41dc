//! Exponential backoff with jitter, for retries after conflicts and backend errors.

use std::time::Duration;

/// Waits that double after each failure in a row, up to a maximum, and start small
/// again after a success. Each wait is jittered (between half and all of it) so that
/// many retriers that failed together do not retry together. The repository, the
/// projection runner and the adapters' own retry loops (the Kafka relay) use it.
///
/// ```
/// use std::time::Duration;
/// let mut backoff = cqrs_core::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let first = backoff.fail();
/// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
/// backoff.reset(); // after a success
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits starting at `initial` and doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next retry (jittered), doubling the one after.
    pub fn fail(&mut self) -> Duration {
        let wait = jitter(self.next);
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// A success: the next failure waits the initial time again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// A random duration between half of `wait` and `wait`.
pub(crate) fn jitter(wait: Duration) -> Duration {
    // The low bits of a UUID v7 are random; no RNG crate needed for jitter.
    let random = (uuid::Uuid::now_v7().as_u128() & 0xffff) as u32;
    let half = wait / 2;
    half + half.mul_f64(f64::from(random) / f64::from(u16::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_resets_after_a_success() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let waits: Vec<Duration> = (0..6).map(|_| backoff.fail()).collect();
        for (wait, full) in waits.iter().zip([100, 200, 400, 800, 800, 800]) {
            let full = Duration::from_millis(full);
            assert!(
                *wait >= full / 2 && *wait <= full,
                "{wait:?} not within [{full:?}/2, {full:?}]"
            );
        }
        backoff.reset();
        assert!(backoff.fail() <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_waits() {
        let waits: std::collections::HashSet<Duration> =
            (0..50).map(|_| jitter(Duration::from_secs(1))).collect();
        assert!(waits.len() > 10, "waits are spread, got {}", waits.len());
    }
}
