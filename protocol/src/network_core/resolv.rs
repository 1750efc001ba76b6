//! Resolv answers, one per question per window: a primary asked for its map answers the first
//! request of a kind at once (to its `reply_hadd`), and every further request of that kind
//! within [`RESOLV_WINDOW`] with one answer on `/dhcp/resolv/broadcast/` at the window's end,
//! however many `reply_hadd`s asked. A map of a thousand nodes is a hundred messages: a flood of
//! questions costs at most two answers of each kind per window.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::hadd::Hadd;
use crate::model::InfoKind;
use crate::topic::Topic;

/// How often one question is answered, at most (twice: at once, and the broadcast after).
pub const RESOLV_WINDOW: Duration = Duration::from_secs(1);

/// What to do with a resolv request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolv {
    /// Answer it now, on this topic.
    Answer(Topic),
    /// Answered with the others at the window's end, on the broadcast topic.
    Coalesced,
}

/// The questions answered lately, and those waiting for the broadcast.
#[derive(Debug, Clone, Default)]
pub struct ResolvWindows {
    answered_at: BTreeMap<InfoKind, Duration>,
    waiting: BTreeSet<InfoKind>,
}

impl ResolvWindows {
    /// A request of `kind` answered to `reply_hadd` (none: the broadcast), at `now`.
    pub fn on_request(
        &mut self,
        kind: InfoKind,
        reply_hadd: Option<Hadd>,
        now: Duration,
    ) -> Resolv {
        let open = self
            .answered_at
            .get(&kind)
            .is_some_and(|at| now.saturating_sub(*at) < RESOLV_WINDOW);
        if open {
            self.waiting.insert(kind);
            return Resolv::Coalesced;
        }
        self.answered_at.insert(kind, now);
        Resolv::Answer(reply_hadd.map_or(Topic::ResolvBroadcast, Topic::ResolvReply))
    }

    /// The kinds whose window ended by `now` with requests waiting: answer each on the
    /// broadcast topic.
    pub fn due(&mut self, now: Duration) -> Vec<InfoKind> {
        let due: Vec<InfoKind> = self
            .waiting
            .iter()
            .copied()
            .filter(|kind| {
                self.answered_at
                    .get(kind)
                    .is_none_or(|at| now.saturating_sub(*at) >= RESOLV_WINDOW)
            })
            .collect();
        for kind in &due {
            self.waiting.remove(kind);
            self.answered_at.insert(*kind, now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: InfoKind = InfoKind::Nodes;

    fn at(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn one_answer_at_once_then_one_broadcast_per_window_however_many_ask() {
        let mut windows = ResolvWindows::default();
        let first = Hadd::new(2, 0);
        assert_eq!(
            windows.on_request(NODES, Some(first), at(0)),
            Resolv::Answer(Topic::ResolvReply(first))
        );
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
        assert_eq!(windows.due(at(1_000)), [NODES]);
        assert_eq!(windows.due(at(1_001)), [], "answered once");
        // Asked again within the broadcast's window: waits for the next.
        assert_eq!(
            windows.on_request(NODES, Some(first), at(1_500)),
            Resolv::Coalesced
        );
        assert_eq!(windows.due(at(1_999)), []);
        assert_eq!(windows.due(at(2_000)), [NODES]);
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
}
