//! [`NetworkView`]: the network as any listener can know it from the traffic it hears: the
//! primary and its epoch, the network controllers and their candidacies, every node with the
//! state the network was told (by itself, or by the primary on its behalf), and the map of
//! node info and values.
//!
//! One model for every listener: the network core keeps one (it is what it answers resolv
//! requests from, and what it checks its own dispatches against), and so do the web manager
//! and `janitoo status`. Everything goes through the same [`EpochFence`], so a forged or stale
//! primary heartbeat, heartbeat on behalf or map answer is refused by all of them alike.
//!
//! Pure: messages and an explicit `now` in, [`Change`]s out.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::candidacy::Candidacy;
use crate::fence::{DispatchVerdict, EpochFence, Forgery, Verdict};
use crate::fields::Data;
use crate::hadd::{Hadd, HaddTarget};
use crate::heartbeat::Heartbeat;
use crate::message::Message;
use crate::model::NodeState;
use crate::network_map::{MapChange, NetworkMap};
use crate::reply::{DiscoveryData, DiscoveryReply};
use crate::topic::Topic;

/// A network controller as last heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerStatus {
    /// What it said of itself.
    pub candidacy: Candidacy,
    /// When it was last heard.
    pub heard: Duration,
}

/// A node's state as the network was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// The state, once told.
    pub state: Option<NodeState>,
    /// Who told it: `None` for the node itself, else the primary that spoke on its behalf.
    pub told_by: Option<Hadd>,
    /// When the node's own heartbeat was last heard.
    pub heard: Option<Duration>,
}

/// Why a message was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// From an epoch lower than the highest seen, or not from the primary.
    Fenced,
    /// A jump of several rounds, not confirmed yet.
    Unconfirmed,
    /// A claim from a controller never announced, while the primary is alive.
    Unannounced,
    /// An epoch its sender could not have claimed.
    Forged(Forgery),
    /// A dispatch in this controller's own name that it did not send.
    NotMine,
}

/// What a message changed in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new primary (or the same one with a new epoch).
    Primary {
        /// The primary.
        hadd: Hadd,
        /// Its epoch.
        epoch: u64,
    },
    /// The primary is gone (its Last Will), nobody replaced it yet.
    PrimaryGone {
        /// The lost primary.
        hadd: Hadd,
    },
    /// A network controller's candidacy.
    Controller(Hadd),
    /// A node's state or info.
    Node(Hadd),
    /// One instance of a value.
    Value(MapChange),
    /// A message was refused.
    Refused(Refusal),
}

/// The network as a listener knows it.
#[derive(Debug, Clone)]
pub struct NetworkView {
    fence: EpochFence,
    map: NetworkMap,
    controllers: BTreeMap<Hadd, ControllerStatus>,
    nodes: BTreeMap<Hadd, NodeStatus>,
    /// The network controller keeping this view, if it is one's.
    me: Option<Hadd>,
    /// The original's DHCP server, named by a map answer without epoch while no epoch was
    /// ever seen (its heartbeat comes every 15 s and carries none).
    original_primary: Option<Hadd>,
}

impl NetworkView {
    /// An empty view; `confirm_after` as in [`EpochFence::new`] (half the primary interval).
    pub fn new(confirm_after: Duration) -> Self {
        NetworkView {
            fence: EpochFence::new(confirm_after),
            map: NetworkMap::new(),
            controllers: BTreeMap::new(),
            nodes: BTreeMap::new(),
            me: None,
            original_primary: None,
        }
    }

    /// The view of network controller `me`: a dispatch in its name that it did not send (what
    /// it sends, it records first) is refused, keyed network or not.
    pub fn kept_by(mut self, me: Hadd) -> Self {
        self.me = Some(me);
        self
    }

    /// Whether the original's primary may run on this network ([`EpochFence::beside_original`]).
    pub fn beside_original(mut self, may_run: bool) -> Self {
        self.fence = self.fence.beside_original(may_run);
        self
    }

    /// Keeps at most `max` values (instances) per node ([`NetworkMap::with_max_values_per_node`]).
    pub fn keeping_values(mut self, max: usize) -> Self {
        self.map = NetworkMap::with_max_values_per_node(max);
        self
    }

    /// Forgets what the network was told of `hadd` (a node no controller ever described).
    pub fn forget(&mut self, hadd: Hadd) {
        self.nodes.remove(&hadd);
    }

    /// The primary and its epoch, if one is known.
    pub fn primary(&self) -> Option<(Hadd, u64)> {
        self.fence.primary()
    }

    /// The original's primary (`janitoo_dhcp`) as its map answer named it, while no epoch was
    /// ever seen: the node of that answer with the DHCP server's command class.
    pub fn original_primary(&self) -> Option<Hadd> {
        self.original_primary.filter(|_| self.fence.highest() == 0)
    }

    /// The highest epoch seen.
    pub fn epoch(&self) -> u64 {
        self.fence.highest()
    }

    /// The fence this view judges with.
    pub fn fence(&self) -> &EpochFence {
        &self.fence
    }

    /// The map of node info and values.
    pub fn map(&self) -> &NetworkMap {
        &self.map
    }

    /// Every network controller heard, by address.
    pub fn controllers(&self) -> &BTreeMap<Hadd, ControllerStatus> {
        &self.controllers
    }

    /// Every node whose state was told, by address.
    pub fn nodes(&self) -> &BTreeMap<Hadd, NodeStatus> {
        &self.nodes
    }

    /// A node's state as told (UNKNOWN when never told).
    pub fn state(&self, hadd: Hadd) -> NodeState {
        self.nodes
            .get(&hadd)
            .and_then(|status| status.state)
            .unwrap_or(NodeState::Unknown)
    }

    /// Whether a node of controller `ctrl` has told its info.
    pub fn knows_controller(&self, ctrl: u16) -> bool {
        self.map.nodes().any(|node| node.hadd.ctrl == ctrl)
    }

    /// The owner of this view claimed `epoch` (it is primary).
    pub fn claimed(&mut self, me: Hadd, epoch: u64) {
        self.fence.claimed(me, epoch);
    }

    /// The owner of this view was away (disconnected, paused): it believes any plausible epoch
    /// at once, as the network may have moved on.
    pub fn rejoined(&mut self) {
        self.fence.rejoined();
    }

    /// The owner of this view, primary, dispatched `state` on behalf of `hadd`.
    pub fn record_dispatch(&mut self, hadd: Hadd, state: NodeState, observer: Hadd) {
        self.tell(hadd, state, Some(observer));
    }

    /// Takes in one message heard at `now`.
    pub fn apply(&mut self, topic: &Topic, message: &Message, now: Duration) -> Vec<Change> {
        match (topic, message) {
            (Topic::ResolvHeartbeat, Message::ResolvHeartbeat(beat)) => {
                self.on_primary_heartbeat(beat.hadd, beat.epoch.unwrap_or(0), now)
            }
            (Topic::Heartbeat(hadd), Message::Heartbeat(beat)) => self.on_own(*hadd, beat, now),
            (Topic::HeartbeatOnBehalf, Message::HeartbeatOnBehalf(beat)) => self.on_behalf(beat),
            (Topic::ResolvReply(_) | Topic::ResolvBroadcast, Message::DiscoveryReply(reply))
                if !self.fence.accepts_map_answer(epoch_of(reply)) =>
            {
                vec![Change::Refused(Refusal::Fenced)]
            }
            (Topic::ResolvReply(_) | Topic::ResolvBroadcast, Message::DiscoveryReply(reply)) => {
                // The primary's map; before its heartbeat is heard, its epoch names it.
                let claimant = epoch_of(reply)
                    .filter(|epoch| *epoch > 0)
                    .map(|epoch| Hadd::new((epoch & 0xffff) as u16, 0));
                if epoch_of(reply).is_none() && self.fence.highest() == 0 {
                    // The original's primary: its map names itself by its command class.
                    if let Some(dhcp) = dhcp_server_in(reply) {
                        self.original_primary = Some(dhcp);
                    }
                }
                let told_by = self
                    .primary()
                    .map(|(hadd, _)| hadd)
                    .or(claimant)
                    .or(self.original_primary());
                self.on_discovery(topic, reply, told_by, message)
            }
            (_, Message::DiscoveryReply(reply)) => self.on_discovery(topic, reply, None, message),
            _ => {
                let mut changes: Vec<Change> = Candidacy::from_message(topic, message)
                    .map(|candidacy| self.on_candidacy(candidacy, now))
                    .into_iter()
                    .collect();
                changes.extend(
                    self.map
                        .apply(topic, message)
                        .into_iter()
                        .map(Change::Value),
                );
                changes
            }
        }
    }

    fn on_primary_heartbeat(&mut self, from: Hadd, epoch: u64, now: Duration) -> Vec<Change> {
        match self.fence.on_primary_heartbeat(from, epoch, now) {
            Verdict::Current => Vec::new(),
            Verdict::Newer => vec![Change::Primary { hadd: from, epoch }],
            Verdict::Stale => vec![Change::Refused(Refusal::Fenced)],
            Verdict::Unconfirmed => vec![Change::Refused(Refusal::Unconfirmed)],
            Verdict::Unannounced => vec![Change::Refused(Refusal::Unannounced)],
            Verdict::Forged(why) => vec![Change::Refused(Refusal::Forged(why))],
        }
    }

    fn on_candidacy(&mut self, candidacy: Candidacy, now: Duration) -> Change {
        let hadd = candidacy.hadd;
        self.fence.announced(hadd, now);
        self.controllers.insert(
            hadd,
            ControllerStatus {
                candidacy,
                heard: now,
            },
        );
        Change::Controller(hadd)
    }

    /// The nodes `target` names: one, or every known node of a controller and the controller.
    fn targets(&self, target: HaddTarget) -> Vec<Hadd> {
        match target {
            HaddTarget::Node(hadd) => vec![hadd],
            HaddTarget::AllNodes { ctrl } => {
                let mut hadds: Vec<Hadd> = self
                    .nodes
                    .keys()
                    .copied()
                    .filter(|hadd| hadd.ctrl == ctrl)
                    .collect();
                let controller = Hadd::new(ctrl, 0);
                if !hadds.contains(&controller) {
                    hadds.push(controller);
                }
                hadds
            }
        }
    }

    fn tell(&mut self, hadd: Hadd, state: NodeState, told_by: Option<Hadd>) -> Option<Change> {
        let status = self.nodes.entry(hadd).or_default();
        let changed = status.state != Some(state) || status.told_by != told_by;
        status.state = Some(state);
        status.told_by = told_by;
        changed.then_some(Change::Node(hadd))
    }

    fn on_own(&mut self, hadd: Hadd, beat: &Heartbeat, now: Duration) -> Vec<Change> {
        let mut changes = Vec::new();
        if beat.state == NodeState::Offline && self.primary().map(|(p, _)| p) == Some(hadd) {
            self.fence.primary_gone();
            changes.push(Change::PrimaryGone { hadd });
        }
        let targets = match beat.target {
            HaddTarget::Node(_) => vec![hadd],
            target => self.targets(target),
        };
        for node in targets {
            changes.extend(self.tell(node, beat.state, None));
            self.nodes.entry(node).or_default().heard = Some(now);
        }
        changes
    }

    /// A heartbeat on behalf of nodes, believed only from the primary with its epoch.
    pub fn judge_dispatch(&self, beat: &Heartbeat) -> DispatchVerdict {
        self.fence.judge_dispatch(beat)
    }

    fn on_behalf(&mut self, beat: &Heartbeat) -> Vec<Change> {
        if self.me.is_some() && beat.observer == self.me {
            // Its own dispatch heard back tells nothing new; anything else in its name is not
            // its own.
            let echo = self.targets(beat.target).into_iter().all(|hadd| {
                self.nodes.get(&hadd).is_some_and(|status| {
                    status.state == Some(beat.state) && status.told_by == self.me
                })
            });
            return if echo {
                Vec::new()
            } else {
                vec![Change::Refused(Refusal::NotMine)]
            };
        }
        match self.fence.judge_dispatch(beat) {
            DispatchVerdict::Accepted => {
                let observer = beat.observer.or(self.primary().map(|(hadd, _)| hadd));
                self.targets(beat.target)
                    .into_iter()
                    .filter_map(|hadd| self.tell(hadd, beat.state, observer))
                    .collect()
            }
            DispatchVerdict::Forged(why) => vec![Change::Refused(Refusal::Forged(why))],
            DispatchVerdict::NoPrimary
            | DispatchVerdict::Stale
            | DispatchVerdict::NotFromPrimary => vec![Change::Refused(Refusal::Fenced)],
        }
    }

    fn on_discovery(
        &mut self,
        topic: &Topic,
        reply: &DiscoveryReply,
        told_by: Option<Hadd>,
        message: &Message,
    ) -> Vec<Change> {
        let mut changes: Vec<Change> = self
            .map
            .apply(topic, message)
            .into_iter()
            .map(|change| match change {
                MapChange::Node(hadd) => Change::Node(hadd),
                value => Change::Value(value),
            })
            .collect();
        if let DiscoveryData::Nodes(nodes) = &reply.data {
            // Not what the primary says of itself (the original's reports itself PENDING).
            for info in nodes.values().filter(|info| Some(info.hadd) != told_by) {
                let status = self.nodes.entry(info.hadd).or_default();
                if let (None, Some(state)) = (status.state, info.state) {
                    status.state = Some(state);
                    status.told_by = told_by;
                    if !changes.contains(&Change::Node(info.hadd)) {
                        changes.push(Change::Node(info.hadd));
                    }
                }
            }
        }
        changes
    }
}

/// The node of a map answer that is the original's DHCP server (its command classes name it).
fn dhcp_server_in(reply: &DiscoveryReply) -> Option<Hadd> {
    let DiscoveryData::Nodes(nodes) = &reply.data else {
        return None;
    };
    nodes
        .values()
        .find(|info| info.cmd_classes.contains(&crate::CommandClass::DHCPD))
        .map(|info| info.hadd)
}

/// The epoch a map answer carries (our addition), if any.
pub fn epoch_of(reply: &DiscoveryReply) -> Option<u64> {
    reply.extra.get("epoch").and_then(Data::as_u64)
}

/// The field of a map answer that tells how long its sender has held its epoch, in
/// milliseconds (our addition): a listener learns when the takeover was.
pub const PRIMARY_FOR_FIELD: &str = "primary_for_ms";

/// How long the sender of a map answer has been primary, if it says.
pub fn primary_for(reply: &DiscoveryReply) -> Option<Duration> {
    reply
        .extra
        .get(PRIMARY_FOR_FIELD)
        .and_then(Data::as_u64)
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests;
