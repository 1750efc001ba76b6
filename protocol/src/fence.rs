//! Fencing: which primary heartbeats, heartbeats on behalf and map answers a listener believes.
//!
//! One definition, used by the election (to follow or step down), by the network core (to know
//! what the network has been told about each node) and by every view of the network (the web
//! manager, `janitoo status`), so that they never disagree about who is primary.
//!
//! - **Epochs** are `round << 16 | ctrl`: a claim takes the round after the highest seen, and
//!   the claimant's controller number in the low bits, so two claimants never share an epoch.
//!   Arithmetic is checked, and a round above [`MAX_ROUND`] is never adopted: epochs never go
//!   backwards, whatever arrives, and stay exact for readers that hold numbers as doubles.
//! - **A forged epoch** is one its sender could not have claimed: beyond [`MAX_ROUND`], or
//!   whose low bits are another controller's number. It is refused and counted.
//! - **A jump** of more than one round past the highest epoch seen is plausible only after a
//!   partition (the other side took over several times) or when this listener is new. A settled
//!   listener believes it once the same sender has repeated it [`EpochFence::confirm_after`]
//!   later, as a live primary does every interval: a single stray or replayed message is not
//!   enough to move the network's epoch.
//! - **A heartbeat on behalf** is believed only from the primary of the highest epoch, carrying
//!   that epoch (the original's primary carries none: epoch 0, no observer).

use std::time::Duration;

use crate::hadd::Hadd;
use crate::heartbeat::Heartbeat;

/// The highest round ever adopted or claimed: epochs stay below 2^52.
pub const MAX_ROUND: u64 = (1 << 36) - 1;

/// The round of an epoch.
pub fn round_of(epoch: u64) -> u64 {
    epoch >> 16
}

/// The epoch `ctrl` claims after `highest`: the next round; `None` past [`MAX_ROUND`].
pub fn next_epoch(highest: u64, ctrl: u16) -> Option<u64> {
    let round = round_of(highest).checked_add(1)?;
    (round <= MAX_ROUND).then(|| (round << 16) | u64::from(ctrl))
}

/// Why an epoch cannot be genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// Its round is above [`MAX_ROUND`].
    BeyondRange,
    /// Its low bits name another controller than its sender.
    WrongClaimant {
        /// The controller the epoch names.
        named: u16,
    },
    /// Round 0 with a controller number: no controller claims round 0.
    RoundZero,
}

impl std::fmt::Display for Forgery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Forgery::BeyondRange => write!(f, "round above {MAX_ROUND}"),
            Forgery::WrongClaimant { named } => {
                write!(f, "the epoch names controller {named:04}, not its sender")
            }
            Forgery::RoundZero => write!(f, "no controller claims round 0"),
        }
    }
}

/// Checks that `from` could have claimed `epoch` (0 is the original's primary, which sends none).
pub fn check_claim(from: Hadd, epoch: u64) -> Result<(), Forgery> {
    if epoch == 0 {
        return Ok(());
    }
    if round_of(epoch) > MAX_ROUND {
        return Err(Forgery::BeyondRange);
    }
    let named = (epoch & 0xffff) as u16;
    if named != from.ctrl {
        return Err(Forgery::WrongClaimant { named });
    }
    if round_of(epoch) == 0 {
        return Err(Forgery::RoundZero);
    }
    Ok(())
}

/// What a listener makes of a primary heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The primary it already follows, same epoch.
    Current,
    /// A higher epoch: its sender is now the primary.
    Newer,
    /// A lower epoch, or the highest one from another sender: ignored.
    Stale,
    /// A jump of several rounds not confirmed yet: ignored for now.
    Unconfirmed,
    /// Impossible: refused.
    Forged(Forgery),
}

/// What a listener makes of a heartbeat on behalf of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchVerdict {
    /// From the primary, with its epoch: the node's state as the network is told.
    Accepted,
    /// No primary known yet: nobody to attribute it to.
    NoPrimary,
    /// From an epoch lower than the highest seen (a replaced primary, a replay).
    Stale,
    /// From an epoch not adopted yet, or an observer that is not the primary.
    NotFromPrimary,
    /// Its epoch could not have been claimed by its observer.
    Forged(Forgery),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Jump {
    from: Hadd,
    epoch: u64,
    first: Duration,
}

/// The highest epoch a listener has seen, and its primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochFence {
    highest: u64,
    primary: Option<(Hadd, u64)>,
    jump: Option<Jump>,
    settled: bool,
    confirm_after: Duration,
}

impl EpochFence {
    /// A listener that has seen nothing; a jump is believed once repeated `confirm_after` later
    /// (half the primary's interval is right: a live primary repeats every interval).
    pub fn new(confirm_after: Duration) -> Self {
        EpochFence {
            highest: 0,
            primary: None,
            jump: None,
            settled: false,
            confirm_after,
        }
    }

    /// The highest epoch seen or claimed.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// The primary of the highest epoch, if heard.
    pub fn primary(&self) -> Option<(Hadd, u64)> {
        self.primary
    }

    /// This listener claimed `epoch` itself (it is primary).
    pub fn claimed(&mut self, me: Hadd, epoch: u64) {
        self.highest = self.highest.max(epoch);
        self.primary = Some((me, epoch));
        self.jump = None;
        self.settled = true;
    }

    /// The primary is gone (its Last Will): the epoch stays, nobody is primary.
    pub fn primary_gone(&mut self) {
        self.primary = None;
    }

    /// This listener was away (disconnected, frozen): any plausible epoch may be believed at
    /// once, as if new, since the network may have moved on without it.
    pub fn rejoined(&mut self) {
        self.settled = false;
        self.jump = None;
    }

    /// Judges a primary heartbeat from `from` with `epoch` at `now`, and adopts it if believed.
    pub fn on_primary_heartbeat(&mut self, from: Hadd, epoch: u64, now: Duration) -> Verdict {
        if let Err(forgery) = check_claim(from, epoch) {
            return Verdict::Forged(forgery);
        }
        if epoch < self.highest {
            return Verdict::Stale;
        }
        if epoch == self.highest && self.primary.is_some() {
            return if self.primary.map(|(hadd, _)| hadd) == Some(from) {
                Verdict::Current
            } else {
                Verdict::Stale
            };
        }
        let leap = round_of(epoch).saturating_sub(round_of(self.highest));
        if self.settled && leap > 1 && !self.confirms(from, epoch, now) {
            return Verdict::Unconfirmed;
        }
        self.highest = epoch;
        self.primary = Some((from, epoch));
        self.jump = None;
        self.settled = true;
        Verdict::Newer
    }

    /// Whether this repeats a recorded jump long enough after it was first heard; records it if
    /// it is new.
    fn confirms(&mut self, from: Hadd, epoch: u64, now: Duration) -> bool {
        match self.jump {
            Some(jump) if jump.from == from && jump.epoch == epoch => {
                now.saturating_sub(jump.first) >= self.confirm_after
            }
            _ => {
                self.jump = Some(Jump {
                    from,
                    epoch,
                    first: now,
                });
                false
            }
        }
    }

    /// Judges a heartbeat on behalf of a node.
    pub fn judge_dispatch(&self, heartbeat: &Heartbeat) -> DispatchVerdict {
        let epoch = heartbeat.epoch.unwrap_or(0);
        if let Some(observer) = heartbeat.observer {
            if let Err(forgery) = check_claim(observer, epoch) {
                return DispatchVerdict::Forged(forgery);
            }
        }
        let Some((primary, primary_epoch)) = self.primary else {
            return if epoch < self.highest {
                DispatchVerdict::Stale
            } else {
                DispatchVerdict::NoPrimary
            };
        };
        if epoch < primary_epoch {
            return DispatchVerdict::Stale;
        }
        // The original's primary signs nothing: no observer, epoch 0.
        let observer_matches = heartbeat
            .observer
            .map_or(epoch == 0, |hadd| hadd == primary);
        if epoch > primary_epoch || !observer_matches {
            return DispatchVerdict::NotFromPrimary;
        }
        DispatchVerdict::Accepted
    }

    /// Whether a map answer (resolv reply or broadcast) carrying `epoch` is from the current
    /// primary's epoch or a later one: an answer of a replaced primary is not merged.
    pub fn accepts_map_answer(&self, epoch: Option<u64>) -> bool {
        epoch.unwrap_or(0) >= self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hadd::HaddTarget;
    use crate::model::NodeState;

    const A: Hadd = Hadd::new(1, 0);
    const B: Hadd = Hadd::new(2, 0);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn epoch(round: u64, hadd: Hadd) -> u64 {
        (round << 16) | u64::from(hadd.ctrl)
    }

    fn settled_on(round: u64) -> EpochFence {
        let mut fence = EpochFence::new(ms(500));
        assert_eq!(
            fence.on_primary_heartbeat(A, epoch(round, A), ms(0)),
            Verdict::Newer
        );
        fence
    }

    #[test]
    fn the_next_epoch_is_checked_and_never_wraps() {
        assert_eq!(next_epoch(0, 3), Some(0x1_0003));
        assert_eq!(next_epoch(epoch(7, A), 2), Some(0x8_0002));
        assert_eq!(next_epoch(MAX_ROUND << 16, 2), None);
        assert_eq!(next_epoch(u64::MAX, 2), None);
    }

    #[test]
    fn every_claimable_epoch_stays_below_two_to_the_52() {
        let (highest, next) = ((MAX_ROUND << 16) | 0xffff, (MAX_ROUND + 1) << 16);
        assert_eq!((highest < 1 << 52, next >= 1 << 52), (true, true));
    }

    #[test]
    fn the_last_round_is_claimable_and_the_next_is_not() {
        let last = (MAX_ROUND << 16) | 1;
        assert_eq!(check_claim(A, last), Ok(()));
        assert_eq!(
            check_claim(A, ((MAX_ROUND + 1) << 16) | 1),
            Err(Forgery::BeyondRange)
        );
        assert_eq!(next_epoch((MAX_ROUND - 1) << 16, 1), Some(last));
        assert_eq!(next_epoch(last, 1), None);
        assert!(Forgery::WrongClaimant { named: 2 }
            .to_string()
            .contains("0002"));
        assert!(Forgery::BeyondRange
            .to_string()
            .contains(&MAX_ROUND.to_string()));
    }

    #[test]
    fn impossible_epochs_are_forged() {
        assert_eq!(check_claim(A, 0), Ok(()), "the original's primary");
        assert_eq!(check_claim(A, epoch(5, A)), Ok(()));
        assert_eq!(check_claim(A, u64::MAX), Err(Forgery::BeyondRange));
        assert_eq!(
            check_claim(A, epoch(5, B)),
            Err(Forgery::WrongClaimant { named: 2 })
        );
        assert_eq!(check_claim(A, 1), Err(Forgery::RoundZero));
        let mut fence = settled_on(3);
        assert_eq!(
            fence.on_primary_heartbeat(B, u64::MAX, ms(10)),
            Verdict::Forged(Forgery::BeyondRange)
        );
        assert_eq!(fence.highest(), epoch(3, A), "nothing adopted");
    }

    #[test]
    fn epochs_never_go_backwards() {
        let mut fence = settled_on(3);
        assert_eq!(
            fence.on_primary_heartbeat(B, epoch(2, B), ms(10)),
            Verdict::Stale
        );
        assert_eq!(
            fence.on_primary_heartbeat(A, epoch(3, A), ms(20)),
            Verdict::Current
        );
        assert_eq!(
            fence.on_primary_heartbeat(B, epoch(4, B), ms(30)),
            Verdict::Newer
        );
        assert_eq!(fence.primary(), Some((B, epoch(4, B))));
        assert_eq!(
            fence.on_primary_heartbeat(A, epoch(3, A), ms(40)),
            Verdict::Stale
        );
    }

    #[test]
    fn a_jump_of_several_rounds_needs_a_repeat_from_the_same_sender() {
        let mut fence = settled_on(3);
        let far = epoch(9, B);
        assert_eq!(
            fence.on_primary_heartbeat(B, far, ms(100)),
            Verdict::Unconfirmed
        );
        assert_eq!(
            fence.on_primary_heartbeat(B, far, ms(400)),
            Verdict::Unconfirmed,
            "too soon"
        );
        assert_eq!(fence.highest(), epoch(3, A));
        assert_eq!(fence.on_primary_heartbeat(B, far, ms(600)), Verdict::Newer);
        assert_eq!(fence.primary(), Some((B, far)));
    }

    #[test]
    fn a_jump_is_confirmed_only_by_the_same_sender_and_epoch() {
        let mut fence = settled_on(3);
        let (b_far, c_far) = (epoch(9, B), epoch(9, Hadd::new(3, 0)));
        assert_eq!(
            fence.on_primary_heartbeat(B, b_far, ms(100)),
            Verdict::Unconfirmed
        );
        assert_eq!(
            fence.on_primary_heartbeat(Hadd::new(3, 0), c_far, ms(700)),
            Verdict::Unconfirmed,
            "another sender does not confirm B's jump"
        );
        assert_eq!(fence.highest(), epoch(3, A));
        let mut fence = settled_on(3);
        assert_eq!(
            fence.on_primary_heartbeat(B, b_far, ms(100)),
            Verdict::Unconfirmed
        );
        assert_eq!(
            fence.on_primary_heartbeat(B, epoch(8, B), ms(700)),
            Verdict::Unconfirmed,
            "nor does another epoch of the same sender"
        );
        assert_eq!(fence.highest(), epoch(3, A));
    }

    #[test]
    fn a_claim_of_ones_own_is_the_highest() {
        let mut fence = EpochFence::new(ms(500));
        fence.claimed(B, epoch(1, B));
        assert_eq!(fence.highest(), epoch(1, B));
        assert_eq!(fence.primary(), Some((B, epoch(1, B))));
        assert_eq!(
            fence.on_primary_heartbeat(A, epoch(1, A), ms(0)),
            Verdict::Stale,
            "the same round from a lower controller"
        );
    }

    #[test]
    fn a_new_or_rejoining_listener_believes_any_plausible_epoch_at_once() {
        let mut fresh = EpochFence::new(ms(500));
        assert_eq!(
            fresh.on_primary_heartbeat(B, epoch(40, B), ms(0)),
            Verdict::Newer
        );
        let mut back = settled_on(3);
        back.rejoined();
        assert_eq!(
            back.on_primary_heartbeat(B, epoch(9, B), ms(0)),
            Verdict::Newer
        );
    }

    fn dispatch(epoch: Option<u64>, observer: Option<Hadd>) -> Heartbeat {
        Heartbeat {
            target: HaddTarget::AllNodes { ctrl: 220 },
            state: NodeState::Failed,
            epoch,
            observer,
        }
    }

    #[test]
    fn only_the_primary_of_the_highest_epoch_speaks_for_nodes() {
        let mut fence = EpochFence::new(ms(500));
        let current = epoch(3, A);
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(current), Some(A))),
            DispatchVerdict::NoPrimary
        );
        fence.on_primary_heartbeat(A, current, ms(0));
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(current), Some(A))),
            DispatchVerdict::Accepted
        );
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(1), Some(Hadd::new(666, 0)))),
            DispatchVerdict::Forged(Forgery::WrongClaimant { named: 1 })
        );
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(epoch(2, B)), Some(B))),
            DispatchVerdict::Stale
        );
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(epoch(4, B)), Some(B))),
            DispatchVerdict::NotFromPrimary,
            "ahead of the primary heartbeat"
        );
        assert_eq!(
            fence.judge_dispatch(&dispatch(None, None)),
            DispatchVerdict::Stale,
            "unsigned while an epoch is known"
        );
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(epoch(4, A)), Some(A))),
            DispatchVerdict::NotFromPrimary,
            "the primary's address with an epoch it does not hold"
        );
        // The primary is gone: its epoch is still the highest, and nobody speaks for nodes.
        fence.primary_gone();
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(current), Some(A))),
            DispatchVerdict::NoPrimary
        );
        assert_eq!(
            fence.judge_dispatch(&dispatch(Some(epoch(2, B)), Some(B))),
            DispatchVerdict::Stale
        );
    }

    #[test]
    fn the_originals_unsigned_dispatches_are_believed_from_its_primary() {
        let mut fence = EpochFence::new(ms(500));
        fence.on_primary_heartbeat(A, 0, ms(0));
        assert_eq!(
            fence.judge_dispatch(&dispatch(None, None)),
            DispatchVerdict::Accepted
        );
        assert_eq!(
            fence.judge_dispatch(&dispatch(None, Some(B))),
            DispatchVerdict::NotFromPrimary
        );
    }

    #[test]
    fn map_answers_of_a_replaced_primary_are_refused() {
        let fence = settled_on(3);
        assert!(fence.accepts_map_answer(Some(epoch(3, A))));
        assert!(!fence.accepts_map_answer(Some(epoch(2, B))));
        assert!(!fence.accepts_map_answer(None));
    }
}
