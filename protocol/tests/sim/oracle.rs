//! What the simulation checks, as it runs: the ground truth of who could hear whom, and every
//! invariant of the network core.
//!
//! A dispatch (PENDING, FAILED, DEAD or OFFLINE on behalf of a node) is **false** when the
//! node's own beats kept reaching its dispatcher: the node has been beating, connected, and
//! reachable from a connected, running dispatcher, without a break, since before it sent the
//! last beat the dispatcher heard. (A node cut off by a partition is unreachable for the
//! controllers on the other side, so they may rightly say it is silent; a node whose beats
//! were lost, or whose dispatcher could not listen, is judged by the core's own rules.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use janitoo_protocol::{Hadd, NodeState};

#[derive(Debug, Clone, Copy)]
pub struct Dispatch {
    pub at: Duration,
    pub by: Hadd,
    pub node: Hadd,
    pub state: NodeState,
    pub epoch: u64,
}

#[derive(Default)]
pub struct Oracle {
    /// (beater, listener) -> since when the beater's beats reach the listener without a break.
    clear_since: BTreeMap<(Hadd, Hadd), Duration>,
    /// (beater, listener) -> when the beater sent the last beat the listener handled.
    last_beat_heard: BTreeMap<(Hadd, Hadd), Duration>,
    pub dispatches: Vec<Dispatch>,
    pub claims: BTreeMap<u64, BTreeSet<Hadd>>,
    pub violations: Vec<String>,
    /// (time, the controllers acting as primary), each time that set changed.
    pub acting: Vec<(Duration, Vec<Hadd>)>,
    pub forged_refused: u64,
    /// A stranger's floods published.
    pub floods: u64,
    /// A stranger's plausible claims published while every primary was alive.
    pub pretended: u64,
    /// A stranger's OFFLINEs of the live primary, published when everything was calm.
    pub offlines_forged: u64,
    /// Controller -> when it last handled the original primary's heartbeat (this life).
    pub original_heard: BTreeMap<Hadd, Duration>,
}

impl Oracle {
    /// Who can hear whom now: `clear` holds every (beater, listener) pair that is clear.
    pub fn update_reach(&mut self, clear: &BTreeSet<(Hadd, Hadd)>, now: Duration) {
        self.clear_since.retain(|pair, _| clear.contains(pair));
        for pair in clear {
            self.clear_since.entry(*pair).or_insert(now);
        }
    }

    /// `listener` handled a beat `beater` sent at `sent`.
    pub fn heard_beat(&mut self, beater: Hadd, listener: Hadd, sent: Duration) {
        self.last_beat_heard.insert((beater, listener), sent);
    }

    /// `by` published a heartbeat on behalf of `node`; `seen_before` is the highest epoch it
    /// had seen before the step that published it.
    pub fn dispatched(&mut self, dispatch: Dispatch, seen_before: u64) {
        let Dispatch {
            at,
            by,
            node,
            state,
            epoch,
        } = dispatch;
        if epoch < seen_before {
            self.violations.push(format!(
                "{at:?} {by} dispatched {node} {state} with epoch {epoch:#x}, lower than the {seen_before:#x} it had seen"
            ));
        }
        if !state.is_alive() {
            let pair = (node, by);
            if let (Some(clear), Some(beat)) =
                (self.clear_since.get(&pair), self.last_beat_heard.get(&pair))
            {
                if clear <= beat {
                    self.violations.push(format!(
                        "{at:?} {by} dispatched {node} {state} (epoch {epoch:#x}) though its beats kept coming: clear since {clear:?}, last beat sent {beat:?}"
                    ));
                }
            }
        }
        self.dispatches.push(dispatch);
    }

    pub fn claimed(&mut self, by: Hadd, epoch: u64) {
        self.claims.entry(epoch).or_default().insert(by);
        if self.claims[&epoch].len() > 1 {
            self.violations.push(format!(
                "epoch {epoch:#x} claimed by {:?}",
                self.claims[&epoch]
            ));
        }
    }

    /// `by` claimed at `now` beside an original primary beating every `cadence`: never within
    /// 3 of its periods of hearing it (less a second of delivery jitter in what it learned).
    pub fn claimed_beside_original(&mut self, by: Hadd, cadence: Duration, now: Duration) {
        if let Some(heard) = self.original_heard.get(&by) {
            let silent = now.saturating_sub(*heard);
            if silent + Duration::from_secs(1) < cadence * 3 {
                self.violations.push(format!(
                    "{now:?} {by} claimed {silent:?} after hearing the original beating every {cadence:?}"
                ));
            }
        }
    }

    pub fn epoch_moved(&mut self, by: Hadd, before: u64, after: u64, now: Duration) {
        if after < before {
            self.violations.push(format!(
                "{now:?} {by}'s epoch went back from {before:#x} to {after:#x}"
            ));
        }
    }

    pub fn record_acting(&mut self, acting: Vec<Hadd>, now: Duration) {
        if self.acting.last().is_none_or(|(_, last)| *last != acting) {
            self.acting.push((now, acting));
        }
    }

    /// When a single controller started acting as primary for good, after `calm_from`; and
    /// how long two or more acted at once after `calm_from`.
    pub fn settling(
        &self,
        calm_from: Duration,
        end: Duration,
    ) -> Result<(Duration, Duration), String> {
        let Some((last_change, final_set)) = self.acting.last() else {
            return Err("nobody ever acted as primary".into());
        };
        if final_set.len() != 1 {
            return Err(format!(
                "{} primaries at the end: {final_set:?}",
                final_set.len()
            ));
        }
        let settled = (*last_change).max(calm_from);
        let mut overlap = Duration::ZERO;
        for (at, window) in self
            .acting
            .iter()
            .zip(self.acting.iter().skip(1).map(|(t, _)| *t).chain([end]))
        {
            let (start, set) = at;
            if set.len() > 1 && window > calm_from {
                overlap += window - (*start).max(calm_from);
            }
        }
        Ok((settled - calm_from, overlap))
    }

    /// The dispatches about `node` after `since`, as states.
    pub fn told(&self, node: Hadd, since: Duration) -> Vec<(Duration, Hadd, NodeState)> {
        self.dispatches
            .iter()
            .filter(|d| d.node == node && d.at >= since)
            .map(|d| (d.at, d.by, d.state))
            .collect()
    }
}
