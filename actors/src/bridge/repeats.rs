//! Sets delivered twice: a requester whose connection moves to another broker may have its
//! QoS 1 publication delivered again (MQTT's redelivery). A set is applied once: the same
//! `request_id` from the same requester (`reply_hadd`) within [`REPEAT_WINDOW`] is served as a
//! get of the value, so the requester still has its answer and nothing is written twice.
//!
//! Bounded: [`MAX_REQUESTERS`] requesters (the least recently heard forgotten first), each with
//! its last [`IDS_PER_REQUESTER`] ids.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use janitoo_protocol::{Hadd, Operation, Request};
use tokio::time::Instant;

/// How long a served set's id is remembered.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);

/// Requesters remembered at most.
pub const MAX_REQUESTERS: usize = 256;

/// Ids remembered per requester.
pub const IDS_PER_REQUESTER: usize = 64;

/// The sets served lately, by requester.
#[derive(Debug, Default)]
pub struct RecentSets {
    by_requester: BTreeMap<Hadd, (Instant, VecDeque<(String, Instant)>)>,
}

impl RecentSets {
    /// Whether `request`, heard at `now`, repeats a set already served; a set not seen before
    /// is remembered. Gets, and requests with no id or no requester, are never repeats.
    pub fn repeats(&mut self, request: &Request, now: Instant) -> bool {
        let (Operation::Set, Some(id), Some(requester)) =
            (request.op, &request.request_id, request.reply_hadd)
        else {
            return false;
        };
        if !self.by_requester.contains_key(&requester) && self.by_requester.len() >= MAX_REQUESTERS
        {
            let oldest = self
                .by_requester
                .iter()
                .min_by_key(|(_, (heard, _))| *heard)
                .map(|(hadd, _)| *hadd);
            if let Some(oldest) = oldest {
                self.by_requester.remove(&oldest);
            }
        }
        let (heard, ids) = self
            .by_requester
            .entry(requester)
            .or_insert_with(|| (now, VecDeque::new()));
        *heard = now;
        while ids
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) > REPEAT_WINDOW)
        {
            ids.pop_front();
        }
        if ids.iter().any(|(seen, _)| seen == id) {
            return true;
        }
        if ids.len() >= IDS_PER_REQUESTER {
            ids.pop_front();
        }
        ids.push_back((id.clone(), now));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use janitoo_protocol::{CommandClass, Data, Genre};

    fn set(requester: u16, id: &str) -> Request {
        Request {
            reply_hadd: Some(Hadd::new(9999, requester)),
            request_id: Some(id.into()),
            ..Request::set(
                Hadd::new(220, 2),
                "switch",
                Genre::User,
                CommandClass::SWITCH_BINARY,
                Data::from(1),
            )
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_set_delivered_twice_is_a_repeat_within_the_window() {
        let mut recent = RecentSets::default();
        let now = Instant::now();
        assert!(!recent.repeats(&set(1, "a"), now));
        assert!(recent.repeats(&set(1, "a"), now), "delivered again");
        assert!(!recent.repeats(&set(2, "a"), now), "another requester's id");
        assert!(!recent.repeats(&set(1, "b"), now));
        // At exactly the window's end it is still a repeat; a millisecond past it, a new set.
        assert!(
            recent.repeats(&set(1, "b"), now + REPEAT_WINDOW),
            "at the window's end"
        );
        let later = now + REPEAT_WINDOW + Duration::from_millis(1);
        assert!(
            !recent.repeats(&set(1, "a"), later),
            "past the window: a new set"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gets_and_anonymous_sets_are_never_repeats() {
        let mut recent = RecentSets::default();
        let now = Instant::now();
        let get = Request {
            op: Operation::Get,
            ..set(1, "a")
        };
        assert!(!recent.repeats(&get, now));
        assert!(!recent.repeats(&get, now));
        let anonymous = Request {
            request_id: None,
            ..set(1, "a")
        };
        assert!(!recent.repeats(&anonymous, now));
        assert!(!recent.repeats(&anonymous, now));
        let nowhere = Request {
            reply_hadd: None,
            ..set(1, "a")
        };
        assert!(!recent.repeats(&nowhere, now));
        assert!(!recent.repeats(&nowhere, now));
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_is_bounded_by_requesters_and_ids() {
        let mut recent = RecentSets::default();
        let now = Instant::now();
        for id in 0..=IDS_PER_REQUESTER {
            assert!(!recent.repeats(&set(1, &id.to_string()), now));
        }
        assert!(
            !recent.repeats(&set(1, "0"), now),
            "the oldest id forgotten"
        );
        assert!(recent.repeats(&set(1, "2"), now), "a recent one kept");
        for requester in 2..(MAX_REQUESTERS as u16 + 2) {
            let heard = now + Duration::from_millis(u64::from(requester));
            assert!(!recent.repeats(&set(requester, "x"), heard));
        }
        assert_eq!(recent.by_requester.len(), MAX_REQUESTERS);
        assert!(
            !recent.by_requester.contains_key(&Hadd::new(9999, 1)),
            "least recent gone"
        );
        let last = now + Duration::from_secs(1);
        assert!(recent.repeats(&set(MAX_REQUESTERS as u16 + 1, "x"), last));
    }
}
