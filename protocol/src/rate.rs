//! [`TokenBucket`]: work bounded to a burst, then a steady rate, on an explicit clock. What a
//! stranger can make a controller do (ask newcomers, publish discovery) draws from one.

use std::time::Duration;

/// Up to `burst` tokens, earned back at `rate` per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    burst: f64,
    rate: f64,
    tokens: f64,
    counted_at: Duration,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(burst: f64, rate: f64, now: Duration) -> Self {
        TokenBucket {
            burst,
            rate,
            tokens: burst,
            counted_at: now,
        }
    }

    /// The tokens at `now` (what was earned since last counted, up to the burst).
    pub fn available(&mut self, now: Duration) -> f64 {
        let earned = now.saturating_sub(self.counted_at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.counted_at = now.max(self.counted_at);
        self.tokens
    }

    /// Takes one token at `now`, if there is one.
    pub fn take_one(&mut self, now: Duration) -> bool {
        let taken = self.available(now) >= 1.0;
        if taken {
            self.tokens -= 1.0;
        }
        taken
    }

    /// Gives back one token taken for work that did not happen (up to the burst).
    pub fn give_back(&mut self, now: Duration) {
        self.available(now);
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// Spends `count` tokens at `now`, even more than there are: work that goes together (a
    /// node's publications) may overdraw it, and waits longer for the next.
    pub fn spend(&mut self, count: usize, now: Duration) {
        self.available(now);
        self.tokens -= count as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_then_the_rate() {
        let mut bucket = TokenBucket::full(3.0, 2.0, Duration::ZERO);
        assert!((0..3).all(|_| bucket.take_one(Duration::ZERO)));
        assert!(!bucket.take_one(Duration::ZERO), "the burst is spent");
        assert!(!bucket.take_one(SECOND / 4), "half a token earned");
        assert!(bucket.take_one(SECOND / 2), "one earned in half a second");
        assert!(!bucket.take_one(SECOND / 2));
        assert_eq!(
            bucket.available(10 * SECOND),
            3.0,
            "never more than the burst"
        );
    }

    #[test]
    fn an_overdrawn_bucket_waits_longer() {
        let mut bucket = TokenBucket::full(2.0, 1.0, Duration::ZERO);
        bucket.spend(5, Duration::ZERO);
        assert_eq!(bucket.available(Duration::ZERO), -3.0);
        assert!(!bucket.take_one(3 * SECOND), "back to 0 after 3 s");
        assert!(bucket.take_one(4 * SECOND));
    }

    #[test]
    fn time_going_back_earns_nothing() {
        let mut bucket = TokenBucket::full(1.0, 1.0, 5 * SECOND);
        assert!(bucket.take_one(5 * SECOND));
        assert!(!bucket.take_one(2 * SECOND), "an earlier now earns nothing");
        assert!(!bucket.take_one(5 * SECOND + SECOND / 2));
        assert!(bucket.take_one(6 * SECOND));
    }

    #[test]
    fn a_token_given_back_is_there_again_but_never_past_the_burst() {
        let mut bucket = TokenBucket::full(2.0, 1.0, Duration::ZERO);
        assert!(bucket.take_one(Duration::ZERO));
        assert!(bucket.take_one(Duration::ZERO));
        assert!(!bucket.take_one(Duration::ZERO));
        bucket.give_back(Duration::ZERO);
        assert!(bucket.take_one(Duration::ZERO));
        bucket.give_back(Duration::ZERO);
        bucket.give_back(Duration::ZERO);
        bucket.give_back(Duration::ZERO);
        assert_eq!(bucket.available(Duration::ZERO), 2.0);
    }
}
