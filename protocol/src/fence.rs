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
//!   listener believes it once the same sender has repeated it `confirm_after`
//!   later, as a live primary does every interval: a single stray or replayed message is not
//!   enough to move the network's epoch.
//! - **The original's primary** (`janitoo_dhcp`) sends no epoch (0 here) and never steps down:
//!   outside the epoch order. A listener that has seen no epoch yet believes it at once (a
//!   network of the original's, or a cold start). Past that, only a listener told that one may
//!   run ([`EpochFence::beside_original`]) believes it, once the same sender has repeated it
//!   `confirm_after` later (a single stray or replayed message moves nothing); any other
//!   ignores it as stale, so that on a network of ours a stranger cannot pose as one. Following
//!   it leaves the highest epoch as it was: the next claim still takes the round after the
//!   highest ever seen.
//! - **A claim from a controller never announced** (no candidacy heard from it) counts for less:
//!   while the primary followed is alive (heard within three intervals, or this listener
//!   itself), it is refused, however often it is repeated. Every controller of ours announces
//!   its candidacy each interval, so a real claimant is known well before it claims; a stranger
//!   beating a plausible claim is not, and moves nothing. Once the primary is silent, an
//!   unannounced claim is believed as any other (a candidacy may have been lost). On an
//!   unkeyed network a stranger who also publishes a candidacy is believed: only a key stops
//!   that.
//! - **A heartbeat on behalf** is believed only from the primary of the highest epoch, carrying
//!   that epoch (the original's primary carries none: epoch 0, no observer).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::hadd::Hadd;
use crate::heartbeat::Heartbeat;

/// The highest round ever adopted or claimed: epochs stay below 2^52.
pub const MAX_ROUND: u64 = (1 << 36) - 1;

/// Controllers whose candidacy is remembered at most (the least recently heard goes).
pub const MAX_ANNOUNCED: usize = 256;

/// A primary is alive while heard within this many `confirm_after` (half intervals): three
/// intervals, the election's silence limit by default.
const ALIVE_HALF_INTERVALS: u32 = 6;

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
    /// A claim from a controller never announced, while the primary is alive: refused.
    Unannounced,
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
    /// When the primary was last heard (or claimed by this listener).
    primary_heard: Option<Duration>,
    /// Whether the primary is this listener.
    mine: bool,
    /// Controllers that announced their candidacy, and when last.
    announced: BTreeMap<Hadd, Duration>,
    jump: Option<Jump>,
    settled: bool,
    confirm_after: Duration,
    beside_original: bool,
}

impl EpochFence {
    /// A listener that has seen nothing; a jump is believed once repeated `confirm_after` later
    /// (half the primary's interval is right: a live primary repeats every interval).
    pub fn new(confirm_after: Duration) -> Self {
        EpochFence {
            highest: 0,
            primary: None,
            primary_heard: None,
            mine: false,
            announced: BTreeMap::new(),
            jump: None,
            settled: false,
            confirm_after,
            beside_original: false,
        }
    }

    /// Whether the original's primary may run on this network: past a cold start, its
    /// epoch-less heartbeat is then believed once repeated, rather than ignored as stale.
    pub fn beside_original(mut self, may_run: bool) -> Self {
        self.beside_original = may_run;
        self
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
        self.mine = true;
        self.jump = None;
        self.settled = true;
    }

    /// The primary is gone (its Last Will): the epoch stays, nobody is primary.
    pub fn primary_gone(&mut self) {
        self.primary = None;
        self.mine = false;
    }

    /// Controller `hadd` announced its candidacy at `now`.
    pub fn announced(&mut self, hadd: Hadd, now: Duration) {
        if !self.announced.contains_key(&hadd) && self.announced.len() >= MAX_ANNOUNCED {
            let oldest = self
                .announced
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(hadd, _)| *hadd);
            if let Some(oldest) = oldest {
                self.announced.remove(&oldest);
            }
        }
        self.announced.insert(hadd, now);
    }

    /// Whether the primary followed is alive at `now`: this listener, or heard lately.
    pub fn primary_alive(&self, now: Duration) -> bool {
        self.primary.is_some()
            && (self.mine
                || self.primary_heard.is_some_and(|heard| {
                    now.saturating_sub(heard) <= self.confirm_after * ALIVE_HALF_INTERVALS
                }))
    }

    /// This listener was away (disconnected, frozen): any plausible epoch may be believed at
    /// once, as if new, since the network may have moved on without it.
    /// What it knew of the primary's life is stale too: until the primary is heard again (or
    /// this listener resumes as primary), a claim is not refused as unannounced.
    pub fn rejoined(&mut self) {
        self.settled = false;
        self.jump = None;
        self.mine = false;
        self.primary_heard = None;
    }

    /// Judges a primary heartbeat from `from` with `epoch` at `now`, and adopts it if believed.
    pub fn on_primary_heartbeat(&mut self, from: Hadd, epoch: u64, now: Duration) -> Verdict {
        if let Err(forgery) = check_claim(from, epoch) {
            return Verdict::Forged(forgery);
        }
        if epoch == 0 {
            return self.on_original_heartbeat(from, now);
        }
        if epoch < self.highest {
            return Verdict::Stale;
        }
        if epoch == self.highest && self.primary.is_some() {
            return if self.primary.map(|(hadd, _)| hadd) == Some(from) {
                self.primary_heard = Some(now);
                Verdict::Current
            } else {
                Verdict::Stale
            };
        }
        if !self.announced.contains_key(&from) && self.primary_alive(now) {
            return Verdict::Unannounced;
        }
        let leap = round_of(epoch).saturating_sub(round_of(self.highest));
        if self.settled && leap > 1 && !self.confirms(from, epoch, now) {
            return Verdict::Unconfirmed;
        }
        self.highest = epoch;
        self.primary = Some((from, epoch));
        self.primary_heard = Some(now);
        self.mine = false;
        self.jump = None;
        self.settled = true;
        Verdict::Newer
    }

    /// A primary heartbeat without epoch: the original's primary, believed while it beats.
    fn on_original_heartbeat(&mut self, from: Hadd, now: Duration) -> Verdict {
        if self.primary == Some((from, 0)) {
            self.primary_heard = Some(now);
            return Verdict::Current;
        }
        // Nobody followed and no epoch ever seen: a network of the original, or a cold start.
        let first = self.primary.is_none() && self.highest == 0;
        if !first {
            if !self.beside_original {
                return Verdict::Stale;
            }
            if !self.confirms(from, 0, now) {
                return Verdict::Unconfirmed;
            }
        }
        self.primary = Some((from, 0));
        self.primary_heard = Some(now);
        self.mine = false;
        self.jump = None;
        self.settled = true;
        Verdict::Newer
    }

    /// Whether the primary followed is the original's (it sends no epoch).
    pub fn follows_original(&self) -> bool {
        matches!(self.primary, Some((_, 0)))
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
    /// The original's primary signs none: an answer without epoch is believed while it is the
    /// primary followed.
    pub fn accepts_map_answer(&self, epoch: Option<u64>) -> bool {
        match epoch {
            None | Some(0) if self.follows_original() => true,
            epoch => epoch.unwrap_or(0) >= self.highest,
        }
    }
}

#[cfg(test)]
mod tests;
