//! Election of the primary network controller over MQTT, fenced by epochs.
//!
//! Sans-IO: the network core feeds what it hears (primary heartbeats, the primary's Last Will,
//! candidates' announcements, its own broker connection, a pause of its own process) with an
//! explicit `now`, calls [`Election::on_tick`] regularly, and carries out the returned
//! [`ElectionAction`]s.
//!
//! - **Epochs are unique per claimant**: a claim takes the round after the highest seen, with
//!   the claimant's controller number in the low bits ([`crate::fence`]). Two controllers never
//!   claim the same epoch, so there is at most one primary per epoch; when two claim the same
//!   round, the higher epoch wins and the other steps down at once. Which heartbeats are
//!   believed (forged, stale, unconfirmed jumps) is decided by [`EpochFence`].
//! - **Who claims**: after the primary is lost (its Last Will, or `missed_limit` silent
//!   intervals), every live candidate computes the same ranking (role, then priority, then the
//!   lower HADD) and waits one interval per live candidate ranked above it, so normally only the
//!   best claims, and the next one only if the best does not.
//! - **No flapping**: a controller that comes back listens before it may claim: for
//!   `missed_limit` intervals after a start or a pause of its process, and for `rejoin` after a
//!   reconnection (every client of a restarted broker needs time to come back).
//! - **Beside the original's primary** (`janitoo_dhcp`, whose resolv heartbeat has no epoch and
//!   which never steps down): it is followed as any primary, with the silence limit of its own
//!   cadence, learned from the gaps between its heartbeats (the median of the last three;
//!   until then [`ElectionConfig::original_interval`], its sample configuration's 15 s by
//!   default).
//!   Where one may run ([`ElectionConfig::original_primary`]), a starting controller listens
//!   one of its cadences before it may claim, so that it hears the original's heartbeat first;
//!   no controller claims while an original primary beats (followed yet or not), and a primary
//!   of ours that hears it (twice: see [`EpochFence`]) steps down. Elsewhere an
//!   original primary is followed only from a cold start, and ignored once epochs are seen.
//! - **Nothing stale**: a primary that was away (disconnected, or paused longer than the silence
//!   limit) holds its epoch without using it until it has heard the network for `missed_limit - 1`
//!   intervals: if another controller took over meanwhile, it steps down before saying anything.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fence::{next_epoch, EpochFence, Forgery, Verdict};
use crate::hadd::Hadd;

pub use crate::fence::round_of;

/// The role a network controller is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Prefers to stay secondary: ranked last.
    Secondary,
    /// No preference.
    Auto,
    /// Prefers to be primary: ranked first (but never takes over a live primary).
    Primary,
}

impl Role {
    /// The name in configuration files and candidacies.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Auto => "auto",
        }
    }

    /// Parses a role name; anything else is `None`.
    pub fn parse(text: &str) -> Option<Role> {
        [Role::Primary, Role::Secondary, Role::Auto]
            .into_iter()
            .find(|role| role.as_str() == text)
    }
}

/// What ranks a candidate: its role, then its priority (higher first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    /// Configured role.
    pub role: Role,
    /// Configured priority.
    pub priority: u8,
}

/// Timing of the election.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElectionConfig {
    /// The primary's heartbeat interval (default 1 s); also the announcement interval.
    pub interval: Duration,
    /// Silent intervals before the primary is considered lost (default 3).
    pub missed_limit: u32,
    /// How long a reconnected controller listens before it may claim, so that every client of
    /// a restarted broker is back first (default 10 s: our bridge retries at most 5 s apart).
    pub rejoin: Duration,
    /// The resolv heartbeat period assumed of an original primary until learned (default 15 s,
    /// the `resolv_timeout` of `janitoo_dhcp`'s sample configuration).
    pub original_interval: Duration,
    /// Whether an original primary may run on this network: a starting or reconnected
    /// controller then listens for one `original_interval` (and one interval more) before it
    /// may claim, and an original primary heard (twice) is followed even after epochs were
    /// seen (default false: a stranger could pose as one).
    pub original_primary: bool,
    /// Whether a controller's OFFLINE reaching the election was signed and checked (a keyed
    /// network: believed at once). Unkeyed (default false), anyone can publish one: the
    /// primary's OFFLINE is doubted for 3/10 of an interval, in which a live primary refutes it.
    pub offline_signed: bool,
}

/// The resolv heartbeat period of the original's primary in its sample configuration.
pub const ORIGINAL_RESOLV_INTERVAL: Duration = Duration::from_secs(15);

/// The longest cadence learned of an original primary.
const MAX_ORIGINAL_CADENCE: Duration = Duration::from_secs(3600);

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            interval: Duration::from_secs(1),
            missed_limit: 3,
            rejoin: Duration::from_secs(10),
            original_interval: ORIGINAL_RESOLV_INTERVAL,
            original_primary: false,
            offline_signed: false,
        }
    }
}

impl ElectionConfig {
    /// How long a follower doubts its primary's OFFLINE before it believes it: nothing when
    /// OFFLINEs are signed, 3/10 of an interval otherwise (300 ms by default: a takeover after
    /// a crash stays under half a second, and the primary refutes twice within it).
    pub fn offline_doubt(&self) -> Duration {
        if self.offline_signed {
            Duration::ZERO
        } else {
            self.interval * 3 / 10
        }
    }

    /// How long the primary may be silent before it is lost.
    pub fn silence_limit(&self) -> Duration {
        self.interval * self.missed_limit.max(1)
    }

    /// How long a controller listens after it starts before it may claim: the silence limit,
    /// and on a mixed network one original cadence and an interval, if longer.
    pub fn first_listen(&self) -> Duration {
        if self.original_primary {
            self.silence_limit()
                .max(self.original_interval + self.interval)
        } else {
            self.silence_limit()
        }
    }
}

/// What is known of an original primary's cadence: when it was last heard, and the last gaps.
#[derive(Debug, Clone, Default)]
struct OriginalCadence {
    last: Option<(Hadd, Duration)>,
    gaps: [Option<Duration>; 3],
    /// The next heartbeat starts the count afresh (it may have waited in the socket).
    afresh: bool,
}

impl OriginalCadence {
    /// An epoch-less primary heartbeat from `from` at `now`; a repeat sooner than `shortest`
    /// (a duplicate, a replay) is no gap.
    fn heard(&mut self, from: Hadd, now: Duration, shortest: Duration) {
        match self.last {
            Some((sender, _)) if sender == from && self.afresh => self.afresh = false,
            Some((sender, last)) if sender == from => {
                let gap = now.saturating_sub(last);
                if gap < shortest {
                    return;
                }
                self.gaps.rotate_right(1);
                self.gaps[0] = Some(gap);
            }
            _ => self.gaps = [None; 3],
        }
        self.last = Some((from, now));
    }

    /// This listener was away (paused, disconnected): what it heard meanwhile arrives late,
    /// so the gaps around it say nothing of the cadence; they are learned afresh.
    fn away(&mut self) {
        self.gaps = [None; 3];
        self.afresh = true;
    }

    /// Its cadence: the median of the last three gaps (one late or early heartbeat moves
    /// nothing), `assumed` until three are known.
    fn cadence(&self, assumed: Duration) -> Duration {
        let [Some(a), Some(b), Some(c)] = self.gaps else {
            return assumed;
        };
        let mut gaps = [a, b, c];
        gaps.sort();
        gaps[1].min(MAX_ORIGINAL_CADENCE)
    }
}

/// What the network core must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionAction {
    /// Become primary with this epoch: start dispatching, answer resolv requests.
    BecomePrimary {
        /// The new epoch.
        epoch: u64,
    },
    /// Stop being primary: `primary` holds a higher epoch.
    StepDown {
        /// The new primary.
        primary: Hadd,
        /// Its epoch.
        epoch: u64,
    },
    /// A primary (other than this controller) is followed from now on.
    Following {
        /// The primary.
        primary: Hadd,
        /// Its epoch.
        epoch: u64,
    },
    /// The followed primary is lost (its Last Will, or silent): a takeover is due.
    PrimaryLost {
        /// The lost primary, if it was known.
        primary: Option<Hadd>,
    },
    /// This primary was away: it holds its epoch unused until it has heard the network.
    Hold {
        /// The held epoch.
        epoch: u64,
    },
    /// This primary heard no other after being away: it acts on its epoch again.
    Resume {
        /// The epoch.
        epoch: u64,
    },
    /// Publish the primary heartbeat (`/dhcp/resolv/heartbeat`) with this epoch.
    SendPrimaryHeartbeat {
        /// The epoch.
        epoch: u64,
    },
    /// Publish this controller's candidacy (its rank), so that the others can rank it.
    Announce,
    /// An OFFLINE of the followed primary is doubted: believed only if the primary does not
    /// refute it (beat) within [`ElectionConfig::offline_doubt`].
    OfflineDoubted {
        /// The primary.
        primary: Hadd,
    },
    /// The followed primary beat after an OFFLINE in its name: it was not believed.
    OfflineRefuted {
        /// The primary.
        primary: Hadd,
    },
    /// A primary heartbeat of an older epoch was ignored.
    Fenced {
        /// Its sender.
        from: Hadd,
        /// Its epoch.
        epoch: u64,
    },
    /// A primary heartbeat jumping several rounds ahead is not believed yet.
    Unconfirmed {
        /// Its sender.
        from: Hadd,
        /// Its epoch.
        epoch: u64,
    },
    /// A claim from a controller that never announced its candidacy, while the primary is
    /// alive, was refused.
    Unannounced {
        /// Its sender.
        from: Hadd,
        /// Its epoch.
        epoch: u64,
    },
    /// A primary heartbeat with an epoch its sender could not have claimed was refused.
    Forged {
        /// Its sender.
        from: Hadd,
        /// Its epoch.
        epoch: u64,
        /// Why it cannot be genuine.
        why: Forgery,
    },
}

/// Where this controller stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Primary of `epoch`.
    Primary {
        /// The epoch.
        epoch: u64,
    },
    /// Following `primary`, if one is known.
    Follower {
        /// The primary and its epoch.
        primary: Option<(Hadd, u64)>,
    },
}

/// One controller's view of the election.
#[derive(Debug, Clone)]
pub struct Election {
    me: Hadd,
    rank: Rank,
    config: ElectionConfig,
    standing: Standing,
    fence: EpochFence,
    primary_seen: Option<Duration>,
    lost_since: Option<Duration>,
    listening_until: Duration,
    held_until: Option<Duration>,
    peers: BTreeMap<Hadd, (Rank, Duration)>,
    connected: bool,
    joined: bool,
    last_sent: Option<Duration>,
    original: OriginalCadence,
    /// The followed primary's OFFLINE heard, not yet believed: since when.
    doubted: Option<(Hadd, Duration)>,
    /// When this primary last refuted an OFFLINE in its name.
    refuted_at: Option<Duration>,
    /// When it refutes again: an OFFLINE may reach a follower after the first refutation,
    /// since the two come from different senders.
    refute_again_at: Option<Duration>,
}

impl Election {
    /// A controller that has just started at `now`, not connected yet: once connected, it
    /// listens before it may claim.
    pub fn new(me: Hadd, rank: Rank, config: ElectionConfig, now: Duration) -> Self {
        Election {
            me,
            rank,
            config,
            standing: Standing::Follower { primary: None },
            fence: EpochFence::new(config.interval / 2).beside_original(config.original_primary),
            primary_seen: None,
            lost_since: None,
            listening_until: now + config.first_listen(),
            held_until: None,
            peers: BTreeMap::new(),
            connected: false,
            joined: false,
            last_sent: None,
            original: OriginalCadence::default(),
            doubted: None,
            refuted_at: None,
            refute_again_at: None,
        }
    }

    /// Where this controller stands.
    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// Whether this controller is primary (acting, or holding its epoch after an absence).
    pub fn is_primary(&self) -> bool {
        matches!(self.standing, Standing::Primary { .. })
    }

    /// The epoch this controller may publish with at `now`: primary, connected, not holding.
    pub fn acting_epoch(&self, now: Duration) -> Option<u64> {
        let held = self.held_until.is_some_and(|until| now < until);
        match self.standing {
            Standing::Primary { epoch } if self.connected && !held => Some(epoch),
            _ => None,
        }
    }

    /// The highest epoch seen or claimed.
    pub fn epoch(&self) -> u64 {
        self.fence.highest()
    }

    /// The fence this controller judges primary heartbeats with.
    pub fn fence(&self) -> &EpochFence {
        &self.fence
    }

    /// Listen for `duration` before claiming: what was known of the primary and the peers is
    /// refreshed rather than trusted stale.
    fn listen(&mut self, now: Duration, duration: Duration) -> Vec<ElectionAction> {
        self.listening_until = self.listening_until.max(now + duration);
        self.lost_since = None;
        self.doubted = None;
        self.primary_seen = self.primary_seen.map(|_| now);
        for (_, seen) in self.peers.values_mut() {
            *seen = now;
        }
        self.fence.rejoined();
        match self.standing {
            Standing::Primary { epoch } => {
                let hold = self.config.interval * self.config.missed_limit.saturating_sub(1);
                self.held_until = Some(now + hold.max(self.config.interval));
                vec![ElectionAction::Hold { epoch }]
            }
            Standing::Follower { .. } => Vec::new(),
        }
    }

    /// The broker connection is up: listen before claiming, for the silence limit the first
    /// time, for the rejoin delay after a reconnection; a primary holds its epoch until it has
    /// heard the network.
    pub fn on_connected(&mut self, now: Duration) -> Vec<ElectionAction> {
        self.connected = true;
        self.original.away();
        let duration = if self.joined {
            self.config.rejoin.max(self.config.first_listen())
        } else {
            self.config.first_listen()
        };
        self.joined = true;
        self.listen(now, duration)
    }

    /// The broker connection was lost: no claim can be heard, so none is made.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
    }

    /// This process was paused (stopped, starved) for `gap` until `now`: the pause is nobody's
    /// silence. After a pause longer than the silence limit another controller may have taken
    /// over, so it listens before claiming, and a primary holds its epoch.
    pub fn on_resumed(&mut self, now: Duration, gap: Duration) -> Vec<ElectionAction> {
        let later = |at: Duration| (at + gap).min(now);
        self.primary_seen = self.primary_seen.map(later);
        self.lost_since = self.lost_since.map(later);
        for (_, seen) in self.peers.values_mut() {
            *seen = later(*seen);
        }
        if let Some((sender, last)) = self.original.last {
            self.original.last = Some((sender, later(last)));
        }
        self.original.away();
        if gap <= self.config.silence_limit() {
            return Vec::new();
        }
        self.listen(now, self.config.silence_limit())
    }

    /// A candidate announced itself.
    pub fn on_candidate(&mut self, hadd: Hadd, rank: Rank, now: Duration) {
        if hadd != self.me {
            self.peers.insert(hadd, (rank, now));
            self.fence.announced(hadd, now);
        }
    }

    /// A candidate is gone (its Last Will, or a clean stop); losing the followed primary starts
    /// the takeover at once.
    pub fn on_candidate_lost(&mut self, hadd: Hadd, now: Duration) -> Vec<ElectionAction> {
        if hadd == self.me {
            return self.refute_offline(now);
        }
        if self.offline_doubt_applies(hadd) {
            if self.doubted.is_none() {
                self.doubted = Some((hadd, now));
                return vec![ElectionAction::OfflineDoubted { primary: hadd }];
            }
            return Vec::new();
        }
        self.believe_lost(hadd, now)
    }

    /// Whether an OFFLINE of `hadd` is doubted: unsigned, of the primary followed.
    fn offline_doubt_applies(&self, hadd: Hadd) -> bool {
        !self.config.offline_doubt().is_zero()
            && matches!(self.standing, Standing::Follower { primary: Some((primary, _)) } if primary == hadd)
    }

    /// An OFFLINE in this controller's name: a primary acting refutes it with a heartbeat at
    /// once and again a tenth of an interval later (a follower may hear the OFFLINE after the
    /// first: they come from different senders), at most once per tenth however many come.
    fn refute_offline(&mut self, now: Duration) -> Vec<ElectionAction> {
        let Some(epoch) = self.acting_epoch(now) else {
            return Vec::new();
        };
        let quiet = self.config.interval / 10;
        if let Some(at) = self.refuted_at.filter(|at| now.saturating_sub(*at) < quiet) {
            self.refute_again_at.get_or_insert(at + quiet);
            return Vec::new();
        }
        self.refuted_at = Some(now);
        self.refute_again_at = Some(now + quiet);
        vec![ElectionAction::SendPrimaryHeartbeat { epoch }]
    }

    /// The second refutation, when due.
    fn refute_again(&mut self, now: Duration) -> Option<ElectionAction> {
        let due = self.refute_again_at.filter(|at| now >= *at)?;
        self.refute_again_at = None;
        let epoch = self.acting_epoch(now)?;
        self.refuted_at = Some(now.max(due));
        Some(ElectionAction::SendPrimaryHeartbeat { epoch })
    }

    /// `hadd` is gone: forgotten as a peer, and lost if it was the primary followed.
    fn believe_lost(&mut self, hadd: Hadd, now: Duration) -> Vec<ElectionAction> {
        self.peers.remove(&hadd);
        if self.original.last.is_some_and(|(sender, _)| sender == hadd) {
            // The original's primary said it stops: no need to wait for its silence.
            self.original.last = None;
        }
        match self.standing {
            Standing::Follower {
                primary: Some((primary, _)),
            } if primary == hadd => {
                self.standing = Standing::Follower { primary: None };
                self.fence.primary_gone();
                self.lost_since.get_or_insert(now);
                vec![ElectionAction::PrimaryLost {
                    primary: Some(hadd),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// A primary heartbeat from `from` with `epoch` (none from an original DHCP server: 0).
    pub fn on_primary_heartbeat(
        &mut self,
        from: Hadd,
        epoch: Option<u64>,
        now: Duration,
    ) -> Vec<ElectionAction> {
        let epoch = epoch.unwrap_or(0);
        if from == self.me {
            return Vec::new();
        }
        if epoch == 0 {
            self.original.heard(from, now, self.config.interval);
        }
        match self.fence.on_primary_heartbeat(from, epoch, now) {
            Verdict::Forged(why) => vec![ElectionAction::Forged { from, epoch, why }],
            Verdict::Stale => vec![ElectionAction::Fenced { from, epoch }],
            Verdict::Unconfirmed => vec![ElectionAction::Unconfirmed { from, epoch }],
            Verdict::Unannounced => vec![ElectionAction::Unannounced { from, epoch }],
            Verdict::Current => {
                self.primary_seen = Some(now);
                self.lost_since = None;
                match self.doubted.take() {
                    Some((primary, _)) if primary == from => {
                        vec![ElectionAction::OfflineRefuted { primary }]
                    }
                    other => {
                        self.doubted = other;
                        Vec::new()
                    }
                }
            }
            Verdict::Newer => {
                let mut actions = Vec::new();
                if self.is_primary() {
                    actions.push(ElectionAction::StepDown {
                        primary: from,
                        epoch,
                    });
                }
                actions.push(ElectionAction::Following {
                    primary: from,
                    epoch,
                });
                self.standing = Standing::Follower {
                    primary: Some((from, epoch)),
                };
                self.held_until = None;
                self.primary_seen = Some(now);
                self.lost_since = None;
                self.doubted = None;
                actions
            }
        }
    }

    /// The cadence of the original's primary: learned, or assumed until it is.
    pub fn original_cadence(&self) -> Duration {
        self.original
            .cadence(self.config.original_interval)
            .max(self.config.interval)
    }

    /// Whether an original primary was heard within `missed_limit` of its periods.
    fn original_beating(&self, now: Duration) -> bool {
        let limit = self.original_cadence() * self.config.missed_limit.max(1);
        self.original
            .last
            .is_some_and(|(_, heard)| now.saturating_sub(heard) <= limit)
    }

    /// How long the followed primary may be silent before it is lost: `missed_limit` of its
    /// cadence (ours share the interval; the original's is learned).
    pub fn primary_silence_limit(&self) -> Duration {
        if self.fence.follows_original() {
            self.original_cadence() * self.config.missed_limit.max(1)
        } else {
            self.config.silence_limit()
        }
    }

    /// Candidates ranked above this controller, among those alive at `now`.
    fn position(&self, now: Duration, excluded: Option<Hadd>) -> u32 {
        let mine = (self.rank, std::cmp::Reverse(self.me));
        let count = self
            .peers
            .iter()
            .filter(|(hadd, (_, seen))| {
                Some(**hadd) != excluded && now.saturating_sub(*seen) <= self.config.silence_limit()
            })
            .filter(|(hadd, (rank, _))| (*rank, std::cmp::Reverse(**hadd)) > mine)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Time passes: primary heartbeats and announcements fall due, a held primary resumes, a
    /// silent primary is declared lost, and this controller claims when its turn comes.
    pub fn on_tick(&mut self, now: Duration) -> Vec<ElectionAction> {
        let mut actions: Vec<ElectionAction> = self.refute_again(now).into_iter().collect();
        if let Some((primary, since)) = self.doubted {
            if now.saturating_sub(since) >= self.config.offline_doubt() {
                self.doubted = None;
                actions.extend(self.believe_lost(primary, now));
            }
        }
        if let (Some(until), Standing::Primary { epoch }) = (self.held_until, self.standing) {
            if now >= until && self.connected {
                self.held_until = None;
                self.fence.claimed(self.me, epoch);
                actions.push(ElectionAction::Resume { epoch });
            }
        }
        let held = self.held_until.is_some();
        let due = self
            .last_sent
            .is_none_or(|sent| now.saturating_sub(sent) >= self.config.interval);
        if due && self.connected && !held {
            self.last_sent = Some(now);
            actions.push(ElectionAction::Announce);
            if let Standing::Primary { epoch } = self.standing {
                actions.push(ElectionAction::SendPrimaryHeartbeat { epoch });
            }
        }
        if self.is_primary() || !self.connected || now < self.listening_until {
            return actions;
        }
        let primary = match self.standing {
            Standing::Follower { primary } => primary,
            Standing::Primary { .. } => None,
        };
        let silence_limit = self.primary_silence_limit();
        let silent = self
            .primary_seen
            .is_none_or(|seen| now.saturating_sub(seen) > silence_limit);
        if primary.is_some() && !silent {
            return actions;
        }
        if self.lost_since.is_none() {
            self.lost_since = Some(now);
            if primary.is_some() {
                actions.push(ElectionAction::PrimaryLost {
                    primary: primary.map(|(hadd, _)| hadd),
                });
            }
        }
        if self.config.original_primary && self.original_beating(now) {
            // An original primary beat lately, followed or not (yet): no claim while it beats.
            return actions;
        }
        let lost_since = self.lost_since.unwrap_or(now);
        let turn =
            lost_since + self.config.interval * self.position(now, primary.map(|(hadd, _)| hadd));
        if now >= turn {
            actions.extend(self.claim(now));
        }
        actions
    }

    /// Claims the next epoch; nothing when the epochs are exhausted (never, in practice: the
    /// fence adopts no round past [`crate::fence::MAX_ROUND`]).
    fn claim(&mut self, now: Duration) -> Vec<ElectionAction> {
        let Some(epoch) = next_epoch(self.fence.highest(), self.me.ctrl) else {
            return Vec::new();
        };
        self.fence.claimed(self.me, epoch);
        self.standing = Standing::Primary { epoch };
        self.lost_since = None;
        self.held_until = None;
        self.last_sent = Some(now);
        vec![
            ElectionAction::BecomePrimary { epoch },
            ElectionAction::SendPrimaryHeartbeat { epoch },
        ]
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod original_tests;
