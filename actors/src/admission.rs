//! Admission control in front of the actors: a bounded number of requests in flight per
//! process, and a fair share of them per requester. A request beyond them is turned away at
//! once instead of queued, so that memory stays bounded and a request admitted is answered
//! promptly, whatever the rate of the rest.
//!
//! A requester is known by its `reply_hadd` (the only name a request carries). One that floods
//! holds at most a quarter of the slots; and while the outbound queue is congested (its
//! answers would wait, or be dropped), a requester is admitted only with nothing in flight and
//! nothing admitted in the last [`CONGESTED_SPACING`]: an operator's lone get still goes
//! through a flood from elsewhere.
//!
//! A flood with a new `reply_hadd` each time is many requesters: against it, an eighth of the
//! slots is kept for requests signed with the network's key (an operator's tools), which the
//! others cannot take, and a signed request is not turned away for the number of requesters
//! remembered.

use std::sync::Arc;
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use janitoo_protocol::Hadd;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// While congested, one request per requester per this much time, at most.
pub const CONGESTED_SPACING: Duration = Duration::from_millis(100);

/// Requesters remembered beyond those with requests in flight; past twice this, the idle
/// ones are forgotten.
const REMEMBERED: usize = 4_096;

/// What is known of one requester.
#[derive(Debug, Clone, Copy)]
struct Share {
    holding: u32,
    admitted_at: Instant,
}

/// Every requester's share: written by the bridge's thread (admissions) and by the buses'
/// threads (a ticket dropped when its request is answered).
type Shares = Arc<DashMap<Option<Hadd>, Share>>;

/// The gate: the count of requests in flight lives in the metrics (`in_flight`).
#[derive(Clone)]
pub struct Admission {
    metrics: Arc<Metrics>,
    limit: u64,
    /// The slots unsigned requests may take: the limit less those kept for signed ones.
    unsigned_limit: u64,
    per_requester: u32,
    requesters: Shares,
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many requests in flight, in all or from this requester: answer 503.
    Busy,
    /// The outbound queue is congested: an answer would not go out either; drop it.
    Congested,
}

/// One admitted request: it is in flight until its ticket is dropped (when it is answered,
/// or given up).
#[derive(Debug)]
pub struct Ticket {
    metrics: Arc<Metrics>,
    requester: Option<Hadd>,
    requesters: Shares,
}

impl Admission {
    /// At most `limit` requests in flight (at least one), a quarter of them (at least one)
    /// from any one requester; an eighth of them (when there are 8 or more) kept for signed
    /// requests.
    pub fn new(metrics: Arc<Metrics>, limit: usize) -> Self {
        let limit = limit.max(1);
        let as_count = |count: usize| u64::try_from(count).unwrap_or(u64::MAX);
        Admission {
            metrics,
            limit: as_count(limit),
            unsigned_limit: as_count(limit - limit / 8),
            per_requester: u32::try_from((limit / 4).max(1)).unwrap_or(u32::MAX),
            requesters: Arc::new(DashMap::new()),
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u64 {
        self.metrics.in_flight.get()
    }

    /// A ticket for a request from `requester`, or why not (the caller counts it as shed).
    /// `signed`: signed with the network's key; `congested`: whether the outbound queue is
    /// past its high-water mark.
    pub fn admit(
        &self,
        requester: Option<Hadd>,
        signed: bool,
        congested: bool,
        now: Instant,
    ) -> Result<Ticket, Refusal> {
        let requesters = &self.requesters;
        if requesters.len() > 2 * REMEMBERED {
            requesters.retain(|_, share| {
                share.holding > 0
                    || now.saturating_duration_since(share.admitted_at) < CONGESTED_SPACING
            });
        }
        // Counted before the entry is taken: the entry holds its shard's lock, which `len`
        // would wait for.
        let full = requesters.len() >= 2 * REMEMBERED;
        // The decision and the update under the shard's lock: a ticket dropped meanwhile on a
        // bus's thread cannot be lost between them.
        let entry = requesters.entry(requester);
        let share = match &entry {
            Entry::Occupied(occupied) => Some(*occupied.get()),
            Entry::Vacant(_) => None,
        };
        let holding = share.map_or(0, |share| share.holding);
        if congested {
            let recent = share.is_some_and(|share| {
                now.saturating_duration_since(share.admitted_at) < CONGESTED_SPACING
            });
            let crowded = share.is_none() && full && !signed;
            if holding > 0 || recent || crowded {
                return Err(Refusal::Congested);
            }
        }
        let limit = if signed {
            self.limit
        } else {
            self.unsigned_limit
        };
        if holding >= self.per_requester || !self.metrics.in_flight.increment_below(limit) {
            return Err(if congested {
                Refusal::Congested
            } else {
                Refusal::Busy
            });
        }
        let admitted = Share {
            holding: holding + 1,
            admitted_at: now,
        };
        entry.insert(admitted);
        Ok(Ticket {
            metrics: self.metrics.clone(),
            requester,
            requesters: self.requesters.clone(),
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(mut share) = self.requesters.get_mut(&self.requester) {
            share.holding = share.holding.saturating_sub(1);
        }
        self.metrics.in_flight.decrement();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOODER: Option<Hadd> = Some(Hadd::new(9999, 1));
    const OPERATOR: Option<Hadd> = Some(Hadd::new(9999, 2));

    fn holding(gate: &Admission, requester: Option<Hadd>) -> u32 {
        gate.requesters
            .get(&requester)
            .map_or(0, |share| share.holding)
    }

    #[test]
    fn admits_up_to_the_limit_then_again_as_tickets_are_dropped() {
        let metrics = Arc::new(Metrics::default());
        let gate = Admission::new(metrics.clone(), 2);
        let now = Instant::now();
        let first = gate
            .admit(Some(Hadd::new(1, 1)), false, false, now)
            .expect("first");
        let second = gate
            .admit(Some(Hadd::new(1, 2)), false, false, now)
            .expect("second");
        assert_eq!(
            gate.admit(Some(Hadd::new(1, 3)), false, false, now)
                .unwrap_err(),
            Refusal::Busy
        );
        assert_eq!(metrics.in_flight.get(), 2);
        drop(first);
        assert_eq!(metrics.in_flight.get(), 1);
        assert_eq!(holding(&gate, Some(Hadd::new(1, 1))), 0);
        let third = gate
            .admit(Some(Hadd::new(1, 3)), false, false, now)
            .expect("room again");
        drop((second, third));
        assert_eq!(metrics.in_flight.get(), 0);
    }

    #[test]
    fn one_requester_holds_a_quarter_of_the_slots_and_others_still_get_in() {
        let metrics = Arc::new(Metrics::default());
        let gate = Admission::new(metrics.clone(), 8);
        let now = Instant::now();
        let held: Vec<Ticket> = (0..2)
            .map(|_| gate.admit(FLOODER, false, false, now).unwrap())
            .collect();
        assert_eq!(
            gate.admit(FLOODER, false, false, now).unwrap_err(),
            Refusal::Busy
        );
        let operator = gate
            .admit(OPERATOR, false, false, now)
            .expect("another requester");
        assert_eq!(metrics.in_flight.get(), 3);
        drop((held, operator));
        assert_eq!(metrics.in_flight.get(), 0);
    }

    #[test]
    fn while_congested_a_requester_gets_one_request_per_spacing() {
        let metrics = Arc::new(Metrics::default());
        let gate = Admission::new(metrics.clone(), 8);
        let start = Instant::now();
        let flood = gate
            .admit(FLOODER, false, true, start)
            .expect("its first is admitted");
        assert_eq!(
            gate.admit(FLOODER, false, true, start).unwrap_err(),
            Refusal::Congested,
            "one in flight already"
        );
        drop(flood);
        let soon = start + CONGESTED_SPACING / 2;
        assert_eq!(
            gate.admit(FLOODER, false, true, soon).unwrap_err(),
            Refusal::Congested,
            "answered, but admitted too recently"
        );
        let operator = gate
            .admit(OPERATOR, false, true, soon)
            .expect("the operator's get");
        drop(operator);
        let later = start + CONGESTED_SPACING;
        assert!(gate.admit(FLOODER, false, true, later).is_ok());
        assert!(
            gate.admit(FLOODER, false, false, later).is_ok(),
            "not congested: no spacing"
        );
    }

    #[test]
    fn while_congested_a_requester_still_in_flight_waits_whatever_the_time() {
        let metrics = Arc::new(Metrics::default());
        let gate = Admission::new(metrics.clone(), 8);
        let start = Instant::now();
        let slow = gate.admit(FLOODER, false, true, start).unwrap();
        let long_after = start + 10 * CONGESTED_SPACING;
        assert_eq!(
            gate.admit(FLOODER, false, true, long_after).unwrap_err(),
            Refusal::Congested
        );
        drop(slow);
        assert!(gate.admit(FLOODER, false, true, long_after).is_ok());
    }

    #[test]
    fn the_memory_of_requesters_is_bounded_and_keeps_who_matters() {
        let metrics = Arc::new(Metrics::default());
        let gate = Admission::new(metrics.clone(), 8);
        let remembered = |gate: &Admission| gate.requesters.len();
        let start = Instant::now();
        let old_but_in_flight = gate.admit(OPERATOR, false, false, start).unwrap();
        let bound = 2 * REMEMBERED;
        for node in 0..(bound - 2) as u16 {
            drop(
                gate.admit(Some(Hadd::new(1, node)), false, false, start)
                    .unwrap(),
            );
        }
        assert_eq!(remembered(&gate), bound - 1);
        let later = start + CONGESTED_SPACING;
        // Congested, one short of the bound: a newcomer gets in.
        let newcomer = gate
            .admit(Some(Hadd::new(2, 0)), false, true, later)
            .unwrap();
        assert_eq!(remembered(&gate), bound);
        // At the bound, congested: a newcomer is turned away, nothing forgotten yet.
        assert_eq!(
            gate.admit(Some(Hadd::new(2, 1)), false, true, later)
                .unwrap_err(),
            Refusal::Congested
        );
        // Not congested: admitted, one past the bound...
        drop(
            gate.admit(Some(Hadd::new(2, 1)), false, false, later)
                .unwrap(),
        );
        assert_eq!(remembered(&gate), bound + 1);
        // ...and the next admission forgets the idle ones admitted a spacing ago or more, but
        // neither those in flight nor the recent.
        drop(
            gate.admit(Some(Hadd::new(2, 2)), false, false, later)
                .unwrap(),
        );
        let mut kept: Vec<Option<Hadd>> =
            gate.requesters.iter().map(|share| *share.key()).collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                Some(Hadd::new(2, 0)),
                Some(Hadd::new(2, 1)),
                Some(Hadd::new(2, 2)),
                OPERATOR
            ]
        );
        drop((old_but_in_flight, newcomer));
    }

    #[test]
    fn an_eighth_of_the_slots_is_kept_for_signed_requests() {
        let metrics = Arc::new(Metrics::default());
        let gate = Admission::new(metrics.clone(), 16);
        let now = Instant::now();
        let flood: Vec<Ticket> = (0..14)
            .map(|node| {
                gate.admit(Some(Hadd::new(3, node)), false, false, now)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            gate.admit(Some(Hadd::new(3, 99)), false, false, now)
                .unwrap_err(),
            Refusal::Busy,
            "a new reply_hadd each time takes no more than the unsigned slots"
        );
        let signed: Vec<Ticket> = (0..2)
            .map(|_| {
                gate.admit(OPERATOR, true, false, now)
                    .expect("a signed request")
            })
            .collect();
        assert_eq!(
            gate.admit(OPERATOR, true, false, now).unwrap_err(),
            Refusal::Busy,
            "the limit holds for signed requests too"
        );
        assert_eq!(metrics.in_flight.get(), 16);
        drop((flood, signed));
    }

    #[test]
    fn while_congested_a_signed_newcomer_is_not_turned_away_for_the_crowd() {
        let metrics = Arc::new(Metrics::default());
        let gate = Admission::new(metrics.clone(), 8);
        let start = Instant::now();
        for node in 0..(2 * REMEMBERED) as u16 {
            drop(
                gate.admit(Some(Hadd::new(1, node)), false, false, start)
                    .unwrap(),
            );
        }
        assert_eq!(
            gate.admit(FLOODER, false, true, start).unwrap_err(),
            Refusal::Congested
        );
        let operator = gate
            .admit(OPERATOR, true, true, start)
            .expect("signed: admitted");
        assert_eq!(
            gate.admit(OPERATOR, true, true, start).unwrap_err(),
            Refusal::Congested,
            "but one at a time, as anyone while congested"
        );
        drop(operator);
    }
}
