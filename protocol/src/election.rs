//! Election of the primary network controller over MQTT, fenced by epochs.
//!
//! Sans-IO: the supervisor feeds what it hears (primary heartbeats, the primary's Last Will,
//! candidates' announcements, its own broker connection) with an explicit `now`, calls
//! [`Election::on_tick`] regularly, and carries out the returned [`ElectionAction`]s.
//!
//! - **Epochs are unique per claimant**: a claim takes `epoch = (round + 1) << 16 | ctrl`, where
//!   `round` is the highest round seen and `ctrl` the claimant's controller number. Two
//!   controllers never claim the same epoch, so there is at most one primary per epoch; when two
//!   claim the same round, the higher epoch wins and the other steps down at once.
//! - **Who claims**: after the primary is lost (its Last Will, or `missed_limit` silent
//!   intervals), every live candidate computes the same ranking (role, then priority, then the
//!   lower HADD) and waits one interval per candidate ranked above it, so normally only the best
//!   claims, and the next one only if the best does not.
//! - **No flapping**: a controller that comes back (restarted, unfrozen, reconnected) listens
//!   for `missed_limit` intervals before it may claim, and a primary that hears a higher epoch
//!   steps down; a lower epoch is fenced (ignored, counted).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::hadd::Hadd;

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
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            interval: Duration::from_secs(1),
            missed_limit: 3,
        }
    }
}

/// What the supervisor must do.
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
    /// Publish the primary heartbeat (`/dhcp/resolv/heartbeat`) with this epoch.
    SendPrimaryHeartbeat {
        /// The epoch.
        epoch: u64,
    },
    /// Publish this controller's candidacy (its rank), so that the others can rank it.
    Announce,
    /// A message of an older epoch was ignored.
    Fenced {
        /// Its sender.
        from: Hadd,
        /// Its epoch.
        epoch: u64,
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

/// The round of an epoch.
pub fn round_of(epoch: u64) -> u64 {
    epoch >> 16
}

/// One controller's view of the election.
#[derive(Debug, Clone)]
pub struct Election {
    me: Hadd,
    rank: Rank,
    config: ElectionConfig,
    standing: Standing,
    highest_epoch: u64,
    primary_seen: Option<Duration>,
    lost_since: Option<Duration>,
    listening_until: Duration,
    peers: BTreeMap<Hadd, (Rank, Duration)>,
    connected: bool,
    last_tick: Option<Duration>,
    last_sent: Option<Duration>,
}

impl Election {
    /// A controller that has just started at `now`: it listens before it may claim.
    pub fn new(me: Hadd, rank: Rank, config: ElectionConfig, now: Duration) -> Self {
        Election {
            me,
            rank,
            config,
            standing: Standing::Follower { primary: None },
            highest_epoch: 0,
            primary_seen: None,
            lost_since: None,
            listening_until: now + config.interval * config.missed_limit,
            peers: BTreeMap::new(),
            connected: true,
            last_tick: None,
            last_sent: None,
        }
    }

    /// Where this controller stands.
    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// Whether this controller is primary.
    pub fn is_primary(&self) -> bool {
        matches!(self.standing, Standing::Primary { .. })
    }

    /// The highest epoch seen or claimed.
    pub fn epoch(&self) -> u64 {
        self.highest_epoch
    }

    fn silence_limit(&self) -> Duration {
        self.config.interval * self.config.missed_limit
    }

    /// Listen again before claiming (after a restart, a freeze or a reconnection).
    fn listen(&mut self, now: Duration) {
        self.listening_until = now + self.silence_limit();
        self.lost_since = None;
        self.primary_seen = self.primary_seen.map(|_| now);
        for (_, seen) in self.peers.values_mut() {
            *seen = now;
        }
    }

    /// The broker connection came back: listen before claiming.
    pub fn on_connected(&mut self, now: Duration) {
        self.connected = true;
        self.listen(now);
    }

    /// The broker connection was lost: no claim can be heard, so none is made.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
    }

    /// A candidate announced itself.
    pub fn on_candidate(&mut self, hadd: Hadd, rank: Rank, now: Duration) {
        if hadd != self.me {
            self.peers.insert(hadd, (rank, now));
        }
    }

    /// A candidate is gone (its Last Will, or a clean stop).
    pub fn on_candidate_lost(&mut self, hadd: Hadd, now: Duration) {
        self.peers.remove(&hadd);
        if let Standing::Follower {
            primary: Some((primary, _)),
        } = self.standing
        {
            if primary == hadd {
                self.standing = Standing::Follower { primary: None };
                self.lost_since.get_or_insert(now);
            }
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
        if epoch < self.highest_epoch || (epoch == self.highest_epoch && self.is_primary()) {
            return vec![ElectionAction::Fenced { from, epoch }];
        }
        let mut actions = Vec::new();
        if self.is_primary() {
            actions.push(ElectionAction::StepDown {
                primary: from,
                epoch,
            });
        }
        self.highest_epoch = epoch;
        self.standing = Standing::Follower {
            primary: Some((from, epoch)),
        };
        self.primary_seen = Some(now);
        self.lost_since = None;
        actions
    }

    /// Candidates ranked above this controller, among those alive at `now`.
    fn position(&self, now: Duration, excluded: Option<Hadd>) -> u32 {
        let mine = (self.rank, std::cmp::Reverse(self.me));
        let count = self
            .peers
            .iter()
            .filter(|(hadd, (_, seen))| {
                Some(**hadd) != excluded && now.saturating_sub(*seen) <= self.silence_limit()
            })
            .filter(|(hadd, (rank, _))| (*rank, std::cmp::Reverse(**hadd)) > mine)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Time passes: primary heartbeats and announcements fall due, a silent primary is declared
    /// lost, and this controller claims when its turn comes.
    pub fn on_tick(&mut self, now: Duration) -> Vec<ElectionAction> {
        if self
            .last_tick
            .is_some_and(|last| now.saturating_sub(last) > self.silence_limit())
        {
            // Frozen (or starved) for longer than the silence limit: what we knew is stale.
            self.listen(now);
        }
        self.last_tick = Some(now);
        let mut actions = Vec::new();
        let due = self
            .last_sent
            .is_none_or(|sent| now.saturating_sub(sent) >= self.config.interval);
        if due && self.connected {
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
        let silent = self
            .primary_seen
            .is_none_or(|seen| now.saturating_sub(seen) > self.silence_limit());
        if primary.is_some() && !silent {
            return actions;
        }
        let lost_since = *self.lost_since.get_or_insert(now);
        let turn =
            lost_since + self.config.interval * self.position(now, primary.map(|(hadd, _)| hadd));
        if now >= turn {
            let epoch = ((round_of(self.highest_epoch) + 1) << 16) | u64::from(self.me.ctrl);
            self.highest_epoch = epoch;
            self.standing = Standing::Primary { epoch };
            self.lost_since = None;
            self.last_sent = Some(now);
            actions.push(ElectionAction::BecomePrimary { epoch });
            actions.push(ElectionAction::SendPrimaryHeartbeat { epoch });
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Hadd = Hadd::new(1, 0);
    const B: Hadd = Hadd::new(2, 0);
    const C: Hadd = Hadd::new(3, 0);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn rank(role: Role, priority: u8) -> Rank {
        Rank { role, priority }
    }

    fn became_primary(actions: &[ElectionAction]) -> Option<u64> {
        actions.iter().find_map(|action| match action {
            ElectionAction::BecomePrimary { epoch } => Some(*epoch),
            _ => None,
        })
    }

    #[test]
    fn a_lone_controller_claims_after_listening() {
        let mut election = Election::new(A, rank(Role::Auto, 0), ElectionConfig::default(), ms(0));
        assert_eq!(became_primary(&election.on_tick(ms(2_900))), None);
        let epoch = became_primary(&election.on_tick(ms(3_000))).unwrap();
        assert_eq!((round_of(epoch), epoch & 0xffff), (1, 1));
        assert!(election
            .on_tick(ms(4_000))
            .contains(&ElectionAction::SendPrimaryHeartbeat { epoch }));
    }

    #[test]
    fn a_live_primary_is_followed_and_never_challenged() {
        let mut election =
            Election::new(B, rank(Role::Primary, 9), ElectionConfig::default(), ms(0));
        for second in 0..10 {
            election.on_primary_heartbeat(A, Some(5 << 16 | 1), ms(second * 1000));
            assert_eq!(
                became_primary(&election.on_tick(ms(second * 1000 + 500))),
                None
            );
        }
        assert_eq!(
            election.standing(),
            Standing::Follower {
                primary: Some((A, 5 << 16 | 1))
            }
        );
    }

    #[test]
    fn the_best_secondary_takes_over_a_silent_primary_with_a_higher_epoch() {
        let config = ElectionConfig::default();
        let mut best = Election::new(B, rank(Role::Secondary, 5), config, ms(0));
        let mut other = Election::new(C, rank(Role::Secondary, 1), config, ms(0));
        for election in [&mut best, &mut other] {
            election.on_candidate(B, rank(Role::Secondary, 5), ms(0));
            election.on_candidate(C, rank(Role::Secondary, 1), ms(0));
            election.on_primary_heartbeat(A, Some(1 << 16 | 1), ms(3_000));
        }
        // The primary falls silent after 3 s; lost after 3 more intervals.
        let mut claimed = Vec::new();
        for now in (3_100..=8_000).step_by(100) {
            for election in [&mut best, &mut other] {
                election.on_candidate(B, rank(Role::Secondary, 5), ms(now));
                election.on_candidate(C, rank(Role::Secondary, 1), ms(now));
                if let Some(epoch) = became_primary(&election.on_tick(ms(now))) {
                    claimed.push((election.me, epoch, now));
                }
            }
            if let Some((_, epoch, _)) = claimed.first() {
                other.on_primary_heartbeat(B, Some(*epoch), ms(now));
            }
        }
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        let (who, epoch, at) = claimed[0];
        assert_eq!((who, round_of(epoch)), (B, 2));
        assert!(at <= 6_100 + 100, "claimed at {at} ms");
        assert!(!other.is_primary());
    }

    #[test]
    fn a_last_will_starts_the_takeover_at_once() {
        let mut secondary = Election::new(
            B,
            rank(Role::Secondary, 0),
            ElectionConfig::default(),
            ms(0),
        );
        secondary.on_primary_heartbeat(A, Some(1 << 16 | 1), ms(3_500));
        secondary.on_tick(ms(3_600));
        secondary.on_candidate_lost(A, ms(3_700));
        assert!(became_primary(&secondary.on_tick(ms(3_700))).is_some());
    }

    #[test]
    fn a_primary_that_hears_a_higher_epoch_steps_down_and_lower_epochs_are_fenced() {
        let mut old = Election::new(A, rank(Role::Primary, 0), ElectionConfig::default(), ms(0));
        let epoch = became_primary(&old.on_tick(ms(3_000))).unwrap();
        let newer = ((round_of(epoch) + 1) << 16) | 2;
        assert_eq!(
            old.on_primary_heartbeat(B, Some(newer), ms(4_000)),
            [ElectionAction::StepDown {
                primary: B,
                epoch: newer
            }]
        );
        assert_eq!(
            old.on_primary_heartbeat(C, Some(epoch), ms(4_100)),
            [ElectionAction::Fenced { from: C, epoch }]
        );
        assert!(!old.is_primary());
    }

    #[test]
    fn a_controller_unfrozen_after_a_long_pause_listens_before_claiming() {
        let mut frozen = Election::new(
            B,
            rank(Role::Secondary, 0),
            ElectionConfig::default(),
            ms(0),
        );
        frozen.on_primary_heartbeat(A, Some(1 << 16 | 1), ms(3_000));
        frozen.on_tick(ms(3_000));
        // No tick for 20 s (SIGSTOP), then the first tick: stale knowledge is not a loss.
        assert_eq!(became_primary(&frozen.on_tick(ms(23_000))), None);
        frozen.on_primary_heartbeat(A, Some(1 << 16 | 1), ms(23_500));
        assert_eq!(became_primary(&frozen.on_tick(ms(26_000))), None);
    }

    #[test]
    fn a_disconnected_controller_never_claims() {
        let mut cut_off =
            Election::new(B, rank(Role::Primary, 0), ElectionConfig::default(), ms(0));
        cut_off.on_disconnected();
        assert!(cut_off.on_tick(ms(10_000)).is_empty());
        cut_off.on_connected(ms(10_000));
        assert_eq!(
            became_primary(&cut_off.on_tick(ms(12_000))),
            None,
            "listens first"
        );
        assert!(became_primary(&cut_off.on_tick(ms(13_000))).is_some());
    }
}
