//! Reconnection delays: exponential, capped, with jitter so that many controllers cut off by
//! the same broker restart do not all come back in the same millisecond.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with "equal jitter": each delay is between half and all of
/// `min(cap, first * 2^attempt)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays from `first`, doubling up to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap,
            attempt: 0,
        }
    }

    /// Back to the first delay (after a successful connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The upper bound of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(self.attempt.min(20)))
            .min(self.cap)
    }

    /// The next delay, given a random draw in `[0, 1)`.
    pub fn next_with(&mut self, draw: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(0.5 + 0.5 * draw.clamp(0.0, 1.0))
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let draw = rand::rng().random::<f64>();
        self.next_with(draw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let ceilings: Vec<u128> = (0..8)
            .map(|_| {
                let ceiling = backoff.ceiling();
                let delay = backoff.next_with(0.0);
                assert_eq!(delay, ceiling / 2);
                ceiling.as_millis()
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff.next_with(1.0), Duration::from_secs(5));
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }
}
