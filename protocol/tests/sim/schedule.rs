//! A schedule: who takes part, and which faults happen when. Drawn from a seed.

use std::time::Duration;

use janitoo_protocol::election::{Rank, Role};
use janitoo_protocol::Hadd;

use super::random::Random;

/// When faults may start.
pub const FAULTS_FROM: Duration = Duration::from_secs(2);
pub const FAULTS_UNTIL: Duration = Duration::from_secs(40);

pub const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct ControllerSpec {
    pub hadd: Hadd,
    pub rank: Rank,
    pub half: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    /// Its bus controller is `ctrl/0000`, its component `ctrl/0001`.
    pub ctrl: u16,
    /// Its second node is instead a second bus controller, `ctrl+50/0000`, covered by the
    /// process's Will only through what the map says of it (its `will`), as the tutorial's
    /// three bus controllers are.
    pub sibling: bool,
    pub periods: [Duration; 2],
    pub half: usize,
}

/// An auto node (`hadd = "auto"`): a process that leases a controller address at `start`,
/// then beats on it every `period`.
#[derive(Debug, Clone, Copy)]
pub struct AutoSpec {
    pub half: usize,
    pub start: Duration,
    pub period: Duration,
}

/// The original's primary (`janitoo_dhcp`) of a mixed schedule: resolv heartbeats without
/// epoch every `cadence`, no Will.
#[derive(Debug, Clone, Copy)]
pub struct OriginalSpec {
    pub half: usize,
    pub cadence: Duration,
}

/// Its address (janitoo_dhcp's is 0001/0000, which our first controller has here).
pub const ORIGINAL: Hadd = Hadd::new(100, 0);

/// The stranger's pretend controller, which never announces itself.
pub const PRETENDER: Hadd = Hadd::new(8, 0);

/// The period our controllers assume of an original primary until they learn it.
pub const ORIGINAL_ASSUMED: Duration = Duration::from_secs(15);

/// Who a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Controller(usize),
    Node(usize),
    Original,
}

/// A message a stranger publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// A primary heartbeat with epoch u64::MAX.
    CeilingEpoch,
    /// A dispatch for a whole controller from an observer nobody knows, epoch 1.
    UnknownObserver,
    /// A dispatch signed as a secondary with a plausible epoch.
    NotThePrimary,
    /// An epoch-bearing message seen earlier, sent again.
    Replay,
    /// A primary heartbeat without epoch, as the original's primary sends, from an address no
    /// controller has (once: a live original repeats itself).
    OriginalPrimary,
    /// Retained Home Assistant topics: a node's availability `offline`, and the config of a
    /// node that does not exist.
    Discovery,
    /// A primary heartbeat with the next round's epoch from a controller that never announced
    /// itself (0008/0000), while every controller follows a live primary.
    PlausibleClaim,
    /// An OFFLINE of the primary, while everything is calm and it acts.
    OfflineOfPrimary,
    /// A flood at one instant: resolv requests and discovery broadcasts with a new `reply_hadd`
    /// each, and values a real node never described.
    Flood,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Crash {
        target: Target,
        restart_after: Option<Duration>,
    },
    Restart(Target),
    Freeze {
        controller: usize,
        for_: Duration,
    },
    Thaw(usize),
    DropLink {
        target: Target,
        for_: Duration,
    },
    Reconnect(Target),
    Hang(usize),
    BrokerDown {
        half: usize,
        for_: Duration,
        wills: bool,
    },
    BrokerUp(usize),
    CutBridge {
        for_: Duration,
    },
    HealBridge,
    ChangePeriod {
        node: usize,
        period: Duration,
    },
    Forge(Forgery),
    FreezeOriginal {
        for_: Duration,
    },
    ThawOriginal,
    /// A Pi dies: the broker of `half` and every process whose own half it is, at once (no Will
    /// is published). Its clients elsewhere move to the other half.
    PiDeath {
        half: usize,
    },
    /// The Pi is back: its broker, then its processes.
    PiBack {
        half: usize,
    },
}

/// The brokers of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brokers {
    /// Every process knows one broker (one half, or its own half of a bridged pair).
    One,
    /// Two Mosquittos bridged; every process knows both, its own first, and moves to the other
    /// when its broker fails.
    BridgedPair,
    /// A cluster (no bridge to cut: the servers agree), every process knowing both halves.
    Cluster,
}

pub struct Schedule {
    pub controllers: Vec<ControllerSpec>,
    pub nodes: Vec<NodeSpec>,
    /// Beside an original primary (a mixed schedule), if any.
    pub original: Option<OriginalSpec>,
    pub actions: Vec<(Duration, Action)>,
    /// When the last fault is over: from here the network must settle.
    pub calm_from: Duration,
    /// Which brokers, and whether processes move between them.
    pub brokers: Brokers,
    /// Processes that move keep a standby connection to the other broker, which carries their
    /// publications while they move (`[broker] standby`, on by default).
    pub standby: bool,
    /// Auto nodes, leasing their addresses during the faults.
    pub autos: Vec<AutoSpec>,
}

const PERIODS: [u64; 4] = [1, 2, 3, 5];
const NEW_PERIODS: [u64; 6] = [1, 2, 3, 5, 10, 20];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Schedule {
    pub fn draw(random: &mut Random) -> Schedule {
        let bridged = random.chance(500);
        let half = |random: &mut Random| usize::from(bridged && random.chance(350));
        let roles = [Role::Primary, Role::Secondary, Role::Auto];
        let controllers: Vec<ControllerSpec> = (1..=3)
            .map(|ctrl| ControllerSpec {
                hadd: Hadd::new(ctrl, 0),
                rank: Rank {
                    role: random.pick(&roles),
                    priority: random.below(4) as u8,
                },
                half: if ctrl == 1 { 0 } else { half(random) },
            })
            .collect();
        let nodes: Vec<NodeSpec> = (0..3)
            .map(|at| {
                let component = secs(random.pick(&PERIODS));
                NodeSpec {
                    ctrl: 500 + at,
                    sibling: random.chance(333),
                    periods: [secs(random.pick(&PERIODS)), component],
                    half: half(random),
                }
            })
            .collect();
        let mut schedule = Schedule {
            controllers,
            nodes,
            original: None,
            actions: Vec::new(),
            calm_from: FAULTS_FROM,
            brokers: Brokers::One,
            standby: false,
            autos: Vec::new(),
        };
        let faults = random.below(9);
        for _ in 0..faults {
            let at = random.between(FAULTS_FROM, FAULTS_UNTIL);
            schedule.add_fault(at, bridged, random);
        }
        schedule.add_period_changes(random);
        // Drawn last, so that the seeds of one broker keep their schedules.
        if bridged && random.chance(600) {
            schedule.add_brokers(random);
        }
        // Drawn after everything else, for the same reason.
        schedule.autos = (0..random.below(4))
            .map(|_| AutoSpec {
                half: usize::from(bridged && random.chance(500)),
                start: random.between(Duration::ZERO, FAULTS_UNTIL),
                period: secs(random.pick(&PERIODS)),
            })
            .collect();
        schedule.actions.sort_by_key(|(at, _)| *at);
        schedule
    }

    /// Every process knows both halves: a bridged pair or a cluster (whose bridge is never
    /// cut), and Pis die now and then, one at a time, for a while or for good.
    fn add_brokers(&mut self, random: &mut Random) {
        if random.chance(500) {
            self.brokers = Brokers::Cluster;
            self.actions.retain(|(_, action)| {
                !matches!(action, Action::CutBridge { .. } | Action::HealBridge)
            });
        } else {
            self.brokers = Brokers::BridgedPair;
        }
        let mut free_from = FAULTS_FROM;
        for _ in 0..random.below(3) {
            if free_from >= FAULTS_UNTIL {
                break;
            }
            let at = random.between(free_from, FAULTS_UNTIL);
            // Never the Pi of every controller.
            let mut half = usize::from(random.chance(500));
            if self.controllers.iter().all(|c| c.half == half) {
                half = 1 - half;
            }
            self.push(at, Action::PiDeath { half });
            if random.chance(500) || !self.survivor_beside(half) {
                let back = at + random.between(secs(2), secs(20));
                self.push(back, Action::PiBack { half });
                // Its clients come back within their backoff.
                self.end(back + secs(6));
                free_from = back + secs(1);
            } else {
                // Dead for good: the rest of the house goes on without it.
                self.end(at + secs(6));
                break;
            }
        }
        self.standby = !random.chance(250);
    }

    /// Whether a controller whose Pi is not `half`'s may come back from every crash.
    fn survivor_beside(&self, half: usize) -> bool {
        self.controllers.iter().enumerate().any(|(at, c)| {
            c.half != half
                && !self.actions.iter().any(|(_, action)| {
                    matches!(action, Action::Crash { target: Target::Controller(t), restart_after: None } if *t == at)
                })
        })
    }

    /// A schedule beside an original primary: the same faults, and the original's own
    /// (crashed for good or restarted, frozen, cut off).
    pub fn draw_mixed(random: &mut Random) -> Schedule {
        let mut schedule = Schedule::draw(random);
        // The original knows one broker: a house beside it keeps one list.
        schedule.brokers = Brokers::One;
        schedule.standby = false;
        // The original's primary serves their leases there (not simulated).
        schedule.autos.clear();
        schedule.actions.retain(|(_, action)| {
            !matches!(action, Action::PiDeath { .. } | Action::PiBack { .. })
        });
        let bridged = schedule
            .controllers
            .iter()
            .map(|c| c.half)
            .chain(schedule.nodes.iter().map(|n| n.half))
            .any(|half| half == 1);
        schedule.original = Some(OriginalSpec {
            half: usize::from(bridged && random.chance(500)),
            cadence: secs(random.pick(&[5, 15])),
        });
        if random.chance(333) {
            // Gone for good, some time during the faults.
            let at = random.between(FAULTS_FROM, FAULTS_UNTIL);
            schedule.push(
                at,
                Action::Crash {
                    target: Target::Original,
                    restart_after: None,
                },
            );
        }
        for _ in 0..random.below(3) {
            let at = random.between(FAULTS_FROM, FAULTS_UNTIL);
            match random.below(3) {
                0 => {
                    let after = random.between(secs(1), secs(40));
                    schedule.push(
                        at,
                        Action::Crash {
                            target: Target::Original,
                            restart_after: Some(after),
                        },
                    );
                    schedule.push(at + after, Action::Restart(Target::Original));
                }
                1 => {
                    let for_ = random.between(Duration::from_millis(500), secs(60));
                    schedule.push(at, Action::FreezeOriginal { for_ });
                    schedule.push(at + for_, Action::ThawOriginal);
                }
                _ => {
                    let for_ = random.between(Duration::from_millis(50), secs(30));
                    schedule.push(
                        at,
                        Action::DropLink {
                            target: Target::Original,
                            for_,
                        },
                    );
                    schedule.push(at + for_, Action::Reconnect(Target::Original));
                }
            }
        }
        schedule.actions.sort_by_key(|(at, _)| *at);
        schedule
    }

    /// Whether the original's primary is down for good at the end.
    pub fn original_gone(&self) -> bool {
        let mut gone = false;
        for (_, action) in &self.actions {
            match action {
                Action::Crash {
                    target: Target::Original,
                    restart_after: None,
                } => gone = true,
                Action::Restart(Target::Original) => gone = false,
                _ => {}
            }
        }
        gone
    }

    fn end(&mut self, at: Duration) {
        self.calm_from = self.calm_from.max(at);
    }

    fn push(&mut self, at: Duration, action: Action) {
        self.actions.push((at, action));
        self.end(at);
    }

    fn add_fault(&mut self, at: Duration, bridged: bool, random: &mut Random) {
        let controller = random.below(self.controllers.len() as u64) as usize;
        let node = random.below(self.nodes.len() as u64) as usize;
        let target = if random.chance(500) {
            Target::Controller(controller)
        } else {
            Target::Node(node)
        };
        match random.below(10) {
            0 => {
                // Permanent crashes leave at least one controller and the other nodes.
                let permanent = random.chance(250) && !self.permanently_down(target);
                let restart_after = (!permanent).then(|| random.between(secs(1), secs(15)));
                self.push(
                    at,
                    Action::Crash {
                        target,
                        restart_after,
                    },
                );
                if let Some(after) = restart_after {
                    self.push(at + after, Action::Restart(target));
                }
            }
            1 | 2 => {
                let for_ = random.between(Duration::from_millis(500), secs(25));
                self.push(at, Action::Freeze { controller, for_ });
                self.push(at + for_, Action::Thaw(controller));
            }
            3 => {
                let for_ = random.between(Duration::from_millis(50), secs(8));
                self.push(at, Action::DropLink { target, for_ });
                self.push(at + for_, Action::Reconnect(target));
            }
            4 if !self.hung_already(node) => self.push(at, Action::Hang(node)),
            5 => {
                let half = usize::from(bridged && random.chance(400));
                let for_ = random.between(secs(1), secs(20));
                let wills = random.chance(500);
                self.push(at, Action::BrokerDown { half, for_, wills });
                self.push(at + for_, Action::BrokerUp(half));
                // Clients come back within their backoff (at most 5 s apart).
                self.end(at + for_ + secs(6));
            }
            6 if bridged => {
                let for_ = random.between(secs(1), secs(30));
                self.push(at, Action::CutBridge { for_ });
                self.push(at + for_, Action::HealBridge);
            }
            7 | 8 => {
                let forgery = random.pick(&[
                    Forgery::CeilingEpoch,
                    Forgery::UnknownObserver,
                    Forgery::NotThePrimary,
                    Forgery::Replay,
                    Forgery::OriginalPrimary,
                    Forgery::Discovery,
                    Forgery::Flood,
                    Forgery::PlausibleClaim,
                    Forgery::OfflineOfPrimary,
                ]);
                self.push(at, Action::Forge(forgery));
            }
            _ => {}
        }
    }

    fn permanently_down(&self, target: Target) -> bool {
        let permanent = |t: Target| {
            self.actions.iter().any(|(_, action)| {
                matches!(action, Action::Crash { target, restart_after: None } if *target == t)
            })
        };
        match target {
            // Keep two controllers that may come back.
            Target::Controller(_) => {
                (0..self.controllers.len())
                    .filter(|at| permanent(Target::Controller(*at)))
                    .count()
                    >= 1
            }
            Target::Node(_) | Target::Original => permanent(target),
        }
    }

    fn hung_already(&self, node: usize) -> bool {
        self.actions
            .iter()
            .any(|(_, action)| matches!(action, Action::Hang(n) if *n == node))
    }

    /// Operators change component periods now and then (not while the bridge is cut, nor
    /// just before a cut: a change must be able to reach every half; see the test's doc).
    fn add_period_changes(&mut self, random: &mut Random) {
        let cuts: Vec<(Duration, Duration)> = self
            .actions
            .iter()
            .filter_map(|(at, action)| match action {
                Action::CutBridge { for_ } => Some((*at, *at + *for_)),
                _ => None,
            })
            .collect();
        for _ in 0..random.below(3) {
            let at = random.between(Duration::from_millis(500), FAULTS_UNTIL);
            let clear = cuts
                .iter()
                .all(|(from, to)| at + secs(1) < *from || at > *to + Duration::from_millis(100));
            if clear {
                let node = random.below(self.nodes.len() as u64) as usize;
                let period = secs(random.pick(&NEW_PERIODS));
                // A change is a fault like any other: the network settles after it.
                self.push(at, Action::ChangePeriod { node, period });
            }
        }
    }
}
