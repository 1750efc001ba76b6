//! Resolv answers, a few per question per window: a primary asked for its map answers the
//! first [`RESOLV_AT_ONCE`] askers of a kind in a window at once, each on its own reply topic
//! (a follower that asks its new primary and a client asking just after both hear at once). The
//! further requests of that kind within [`RESOLV_WINDOW`] wait for the window's end: if no more
//! than [`RESOLV_LATE_ANSWERS`] askers waited, each has the map on its own reply topic; if more,
//! they all have one answer on `/dhcp/resolv/broadcast/`. A map of a thousand nodes is a hundred
//! messages: a flood of questions costs at most four answers of each kind per window.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::hadd::Hadd;
use crate::model::InfoKind;
use crate::topic::Topic;

/// How long a question's answers are counted against each other.
pub const RESOLV_WINDOW: Duration = Duration::from_secs(1);

/// How many askers of one kind a window answers at once.
pub const RESOLV_AT_ONCE: usize = 2;

/// How many askers who waited for a window's end are answered each on its own topic; more, and
/// they are answered together on the broadcast topic.
pub const RESOLV_LATE_ANSWERS: usize = 2;

/// What to do with a resolv request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolv {
    /// Answer it now, on this topic.
    Answer(Topic),
    /// Answered at the window's end, with the others that waited.
    Coalesced,
}

/// One kind's window: when it opened, whom it answered (a `reply_hadd`, or none for the
/// broadcast), and whom its end owes an answer, until there are too many to answer each.
#[derive(Debug, Clone)]
struct Window {
    opened: Duration,
    answered: BTreeSet<Option<Hadd>>,
    waiting: BTreeSet<Option<Hadd>>,
    too_many_waiting: bool,
}

impl Window {
    fn opened_for(asker: Option<Hadd>, now: Duration) -> Self {
        Self {
            opened: now,
            answered: BTreeSet::from([asker]),
            waiting: BTreeSet::new(),
            too_many_waiting: false,
        }
    }

    fn ended(&self, now: Duration) -> bool {
        now.saturating_sub(self.opened) >= RESOLV_WINDOW
    }

    fn owes(&self) -> bool {
        self.too_many_waiting || !self.waiting.is_empty()
    }

    fn wait(&mut self, asker: Option<Hadd>) {
        if self.too_many_waiting {
            return;
        }
        self.waiting.insert(asker);
        if self.waiting.len() > RESOLV_LATE_ANSWERS {
            self.waiting.clear();
            self.too_many_waiting = true;
        }
    }
}

/// The questions answered lately, and those waiting for their window's end.
#[derive(Debug, Clone, Default)]
pub struct ResolvWindows {
    windows: BTreeMap<InfoKind, Window>,
}

impl ResolvWindows {
    /// A request of `kind` answered to `reply_hadd` (none: the broadcast), at `now`.
    pub fn on_request(
        &mut self,
        kind: InfoKind,
        reply_hadd: Option<Hadd>,
        now: Duration,
    ) -> Resolv {
        let Some(window) = self.windows.get_mut(&kind) else {
            self.windows
                .insert(kind, Window::opened_for(reply_hadd, now));
            return Resolv::Answer(answer_topic(reply_hadd));
        };
        if window.ended(now) && !window.owes() {
            *window = Window::opened_for(reply_hadd, now);
            return Resolv::Answer(answer_topic(reply_hadd));
        }
        let room = !window.ended(now)
            && !window.answered.contains(&reply_hadd)
            && window.answered.len() < RESOLV_AT_ONCE;
        if room {
            window.answered.insert(reply_hadd);
            return Resolv::Answer(answer_topic(reply_hadd));
        }
        window.wait(reply_hadd);
        Resolv::Coalesced
    }

    /// The answers owed by the windows that ended by `now`: each kind with the `reply_hadd`s to
    /// send its map to (none: the broadcast). Each such answer opens the kind's next window.
    pub fn due(&mut self, now: Duration) -> Vec<(InfoKind, Vec<Option<Hadd>>)> {
        let mut due = Vec::new();
        for (kind, window) in &mut self.windows {
            if !window.ended(now) || !window.owes() {
                continue;
            }
            let askers: BTreeSet<Option<Hadd>> = if window.too_many_waiting {
                BTreeSet::from([None])
            } else {
                std::mem::take(&mut window.waiting)
            };
            *window = Window {
                opened: now,
                answered: askers.clone(),
                waiting: BTreeSet::new(),
                too_many_waiting: false,
            };
            due.push((*kind, askers.into_iter().collect()));
        }
        due
    }
}

/// Where an answer to `reply_hadd` goes: its reply topic, or the broadcast for none.
pub fn answer_topic(reply_hadd: Option<Hadd>) -> Topic {
    reply_hadd.map_or(Topic::ResolvBroadcast, Topic::ResolvReply)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: InfoKind = InfoKind::Nodes;

    fn at(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn two_answers_at_once_then_one_broadcast_per_window_however_many_ask() {
        let mut windows = ResolvWindows::default();
        let first = Hadd::new(2, 0);
        let second = Hadd::new(3, 0);
        for asker in [first, second] {
            assert_eq!(
                windows.on_request(NODES, Some(asker), at(0)),
                Resolv::Answer(Topic::ResolvReply(asker))
            );
        }
        for n in 0..10_000u16 {
            let asker = Hadd::new(1_000 + n % 8_000, n);
            assert_eq!(
                windows.on_request(NODES, Some(asker), at(10)),
                Resolv::Coalesced
            );
        }
        // Another question has a window of its own.
        assert_eq!(
            windows.on_request(InfoKind::Users, None, at(20)),
            Resolv::Answer(Topic::ResolvBroadcast)
        );
        assert_eq!(windows.due(at(999)), []);
        assert_eq!(windows.due(at(1_000)), [(NODES, vec![None])]);
        assert_eq!(windows.due(at(1_001)), [], "answered once");
        // The broadcast's window has room for one more asker at once, then waits.
        assert_eq!(
            windows.on_request(NODES, Some(first), at(1_500)),
            Resolv::Answer(Topic::ResolvReply(first))
        );
        assert_eq!(
            windows.on_request(NODES, Some(second), at(1_500)),
            Resolv::Coalesced
        );
        assert_eq!(windows.due(at(1_999)), []);
        assert_eq!(windows.due(at(2_000)), [(NODES, vec![Some(second)])]);
        // A window is answered anew from its very end.
        assert_eq!(
            windows.on_request(InfoKind::Users, None, at(1_020)),
            Resolv::Answer(Topic::ResolvBroadcast)
        );
        // Quiet for a window: answered at once again.
        assert_eq!(
            windows.on_request(NODES, Some(first), at(3_100)),
            Resolv::Answer(Topic::ResolvReply(first))
        );
    }

    #[test]
    fn one_asker_twice_in_a_window_waits_for_its_end() {
        let mut windows = ResolvWindows::default();
        let client = Hadd::new(9_999, 9_990);
        assert_eq!(
            windows.on_request(NODES, Some(client), at(0)),
            Resolv::Answer(Topic::ResolvReply(client))
        );
        assert_eq!(
            windows.on_request(NODES, Some(client), at(1)),
            Resolv::Coalesced
        );
        // A window that ended still owing answers answers at its end, not at once.
        assert_eq!(
            windows.on_request(NODES, Some(Hadd::new(4, 0)), at(1_000)),
            Resolv::Coalesced
        );
        assert_eq!(
            windows.due(at(1_000)),
            [(NODES, vec![Some(Hadd::new(4, 0)), Some(client)])]
        );
    }

    #[test]
    fn a_few_late_askers_are_each_answered_on_their_own_topic_at_the_windows_end() {
        let mut windows = ResolvWindows::default();
        let follower = Hadd::new(3, 0);
        let client = Hadd::new(9_999, 9_990);
        let other = Hadd::new(4, 0);
        let late = Hadd::new(5, 0);
        for asker in [follower, client] {
            assert_eq!(
                windows.on_request(NODES, Some(asker), at(0)),
                Resolv::Answer(Topic::ResolvReply(asker))
            );
        }
        // The same asker twice is answered once.
        for asker in [Some(other), Some(other), Some(late)] {
            assert_eq!(windows.on_request(NODES, asker, at(5)), Resolv::Coalesced);
        }
        assert_eq!(
            windows.due(at(1_000)),
            [(NODES, vec![Some(other), Some(late)])]
        );
        // The window they opened is full; one more than RESOLV_LATE_ANSWERS waiting: all of
        // them hear the broadcast, once.
        for asker in [Some(client), None, Some(other)] {
            assert_eq!(
                windows.on_request(NODES, asker, at(1_500)),
                Resolv::Coalesced
            );
        }
        assert_eq!(windows.due(at(2_000)), [(NODES, vec![None])]);
        assert_eq!(answer_topic(None), Topic::ResolvBroadcast);
        assert_eq!(answer_topic(Some(client)), Topic::ResolvReply(client));
    }
}
