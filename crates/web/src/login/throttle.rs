//! How often logins may fail: per client address, one attempt at a time and a delay that grows
//! with its recent failures; and in total, a budget of failures that no number of addresses
//! lifts. Sans-IO: times are given.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use janitoo_protocol::rate::TokenBucket;

/// Client addresses whose failures are remembered at most (the least recently failed goes).
pub const MAX_ADDRESSES: usize = 4_096;
/// How long an address's failures are remembered after its last.
pub const FAILURES_KEPT: Duration = Duration::from_secs(600);
/// The longest delay before a login from a failing address is checked.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Failures allowed in a burst, from all addresses together.
pub const FAILURE_BURST: f64 = 30.0;
/// Failures allowed per second after the burst, from all addresses together (one every 2 s).
pub const FAILURE_RATE: f64 = 0.5;

/// Whether a login may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Yes, after waiting `after`.
    Go {
        /// The delay its address's recent failures earn.
        after: Duration,
    },
    /// No: a login from the same address is being checked.
    Busy,
    /// No: the failure budget of all addresses is spent; try again in `retry_after`.
    Spent {
        /// When a failure is allowed again.
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Option<Instant>,
    trying: bool,
}

/// The failures of every address, and the budget of all.
#[derive(Debug)]
pub struct Throttle {
    addresses: HashMap<IpAddr, Record>,
    budget: TokenBucket,
    rate: f64,
    origin: Instant,
}

impl Throttle {
    /// A throttle with nothing failed yet, at `now`.
    pub fn new(now: Instant) -> Throttle {
        Throttle::with_budget(FAILURE_BURST, FAILURE_RATE, now)
    }

    /// One whose failure budget is `burst`, then `rate` a second.
    fn with_budget(burst: f64, rate: f64, now: Instant) -> Throttle {
        Throttle {
            addresses: HashMap::new(),
            budget: TokenBucket::full(burst, rate, Duration::ZERO),
            rate,
            origin: now,
        }
    }

    /// Whether a login from `client` may be checked at `now`; when it may, the address is
    /// busy until [`Throttle::end`].
    pub fn begin(&mut self, client: IpAddr, now: Instant) -> Turn {
        let since = now.saturating_duration_since(self.origin);
        if self.budget.available(since) < 1.0 {
            let missing = 1.0 - self.budget.available(since);
            return Turn::Spent {
                retry_after: Duration::from_secs_f64(missing / self.rate)
                    .max(Duration::from_secs(1)),
            };
        }
        if !self.addresses.contains_key(&client) && self.addresses.len() >= MAX_ADDRESSES {
            self.make_room(now);
        }
        let record = self.addresses.entry(client).or_insert(Record {
            failures: 0,
            last_failure: None,
            trying: false,
        });
        if record.trying {
            return Turn::Busy;
        }
        if record
            .last_failure
            .is_some_and(|at| now.saturating_duration_since(at) > FAILURES_KEPT)
        {
            record.failures = 0;
        }
        record.trying = true;
        Turn::Go {
            after: (Duration::from_secs(1) * record.failures).min(MAX_DELAY),
        }
    }

    /// The login from `client` begun at [`Throttle::begin`] ended at `now`: `failed`, or not
    /// (a success, or given up before it was checked). A success does not forgive the
    /// address's failures: only time does.
    pub fn end(&mut self, client: IpAddr, failed: bool, now: Instant) {
        if failed {
            self.budget
                .spend(1, now.saturating_duration_since(self.origin));
        }
        let Some(record) = self.addresses.get_mut(&client) else {
            return;
        };
        record.trying = false;
        if failed {
            record.failures = record.failures.saturating_add(1);
            record.last_failure = Some(now);
        } else if record.failures == 0 {
            self.addresses.remove(&client);
        }
    }

    /// Forgets the addresses whose failures are old, or else the least recently failed one
    /// not being checked.
    fn make_room(&mut self, now: Instant) {
        self.addresses.retain(|_, record| {
            record.trying
                || record
                    .last_failure
                    .is_some_and(|at| now.saturating_duration_since(at) <= FAILURES_KEPT)
        });
        if self.addresses.len() < MAX_ADDRESSES {
            return;
        }
        let oldest = self
            .addresses
            .iter()
            .filter(|(_, record)| !record.trying)
            .min_by_key(|(_, record)| record.last_failure)
            .map(|(client, _)| *client);
        if let Some(oldest) = oldest {
            self.addresses.remove(&oldest);
        }
    }

    /// How many addresses are remembered.
    pub fn remembered(&self) -> usize {
        self.addresses.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 9));

    fn address(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn after(turn: Turn) -> Duration {
        match turn {
            Turn::Go { after } => after,
            other => panic!("expected a go, got {other:?}"),
        }
    }

    #[test]
    fn each_failure_adds_a_second_up_to_five_and_time_forgives() {
        let start = Instant::now();
        let mut throttle = Throttle::new(start);
        for expected in [0, 1, 2, 3, 4, 5, 5] {
            assert_eq!(
                after(throttle.begin(CLIENT, start)),
                Duration::from_secs(expected)
            );
            throttle.end(CLIENT, true, start);
        }
        assert_eq!(after(throttle.begin(address(1), start)), Duration::ZERO);
        throttle.end(address(1), false, start);
        let later = start + FAILURES_KEPT + Duration::from_secs(1);
        assert_eq!(after(throttle.begin(CLIENT, later)), Duration::ZERO);
    }

    /// Issue 21's finding 1: parallel attempts all waited the same delay, then ran together.
    #[test]
    fn one_attempt_at_a_time_per_address() {
        let now = Instant::now();
        let mut throttle = Throttle::new(now);
        assert_eq!(after(throttle.begin(CLIENT, now)), Duration::ZERO);
        for _ in 0..10 {
            assert_eq!(throttle.begin(CLIENT, now), Turn::Busy);
        }
        assert_eq!(after(throttle.begin(address(1), now)), Duration::ZERO);
        throttle.end(CLIENT, true, now);
        assert_eq!(after(throttle.begin(CLIENT, now)), Duration::from_secs(1));
        // Given up before the check (the client went away): the address is free again.
        throttle.end(CLIENT, false, now);
        assert_eq!(after(throttle.begin(CLIENT, now)), Duration::from_secs(1));
    }

    /// Issue 21's finding 1: a valid login by another user reset the address's delay.
    #[test]
    fn a_success_does_not_forgive_the_failures_of_its_address() {
        let now = Instant::now();
        let mut throttle = Throttle::new(now);
        for _ in 0..3 {
            throttle.begin(CLIENT, now);
            throttle.end(CLIENT, true, now);
        }
        throttle.begin(CLIENT, now);
        throttle.end(CLIENT, false, now);
        assert_eq!(after(throttle.begin(CLIENT, now)), Duration::from_secs(3));
    }

    /// Issue 21's finding 1: once 4,096 addresses had failed, a new address was never delayed.
    /// (The failure budget keeps the table far smaller; here it is lifted.)
    #[test]
    fn a_full_table_forgets_the_least_recently_failed() {
        let start = Instant::now();
        let mut throttle = Throttle::with_budget(1e9, 1e9, start);
        let total = MAX_ADDRESSES as u32 + 100;
        for n in 0..total {
            let now = start + Duration::from_millis(u64::from(n));
            assert!(matches!(throttle.begin(address(n), now), Turn::Go { .. }));
            throttle.end(address(n), true, now);
            assert!(throttle.remembered() <= MAX_ADDRESSES);
        }
        let now = start + Duration::from_millis(u64::from(total));
        // The newest are remembered and delayed; the oldest were forgotten.
        assert_eq!(
            after(throttle.begin(address(total - 1), now)),
            Duration::from_secs(1)
        );
        throttle.end(address(total - 1), false, now);
        assert_eq!(after(throttle.begin(address(0), now)), Duration::ZERO);
    }

    /// Many addresses failing at once: the budget of all is spent after the burst, whatever the
    /// address, and comes back at the rate.
    #[test]
    fn failures_from_many_addresses_spend_one_budget() {
        let now = Instant::now();
        let mut throttle = Throttle::new(now);
        for n in 0..FAILURE_BURST as u32 {
            assert!(matches!(throttle.begin(address(n), now), Turn::Go { .. }));
            throttle.end(address(n), true, now);
        }
        let Turn::Spent { retry_after } = throttle.begin(address(999), now) else {
            panic!("the budget was not spent");
        };
        assert_eq!(retry_after, Duration::from_secs(2));
        let later = now + Duration::from_secs(2);
        assert!(matches!(
            throttle.begin(address(999), later),
            Turn::Go { .. }
        ));
    }
}
