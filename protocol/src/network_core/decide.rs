//! The network core's decisions on each message, and what the election's actions become.

use std::time::Duration;

use super::resolv::{answer_topic, Resolv};
use super::rules::{steps, told_periods};
use super::{Command, Counter, NetworkCore, Note, Out};
use crate::candidacy::Candidacy;
use crate::election::{ElectionAction, Standing};
use crate::fields::Data;
use crate::hadd::{Hadd, HaddTarget};
use crate::heartbeat::{Heartbeat, ResolvHeartbeat};
use crate::message::Message;
use crate::model::{InfoKind, NodeState};
use crate::network_map::MapChange;
use crate::reply::DiscoveryData;
use crate::request::Request;
use crate::topic::Topic;
use crate::view::{Change, Refusal, PRIMARY_FOR_FIELD};

impl NetworkCore {
    pub(super) fn decide(
        &mut self,
        topic: &Topic,
        message: &Message,
        now: Duration,
        out: &mut Out,
    ) {
        if let (Topic::NodeReply(to), Message::ValueReply(reply)) = (topic, message) {
            if *to == self.setup.hadd {
                let counter = if reply.status().is_success() {
                    Counter::Answered
                } else {
                    Counter::AnswerRefused
                };
                out.push(Command::Count(counter));
            }
        }
        match (topic, message) {
            (Topic::Heartbeat(hadd), Message::Heartbeat(beat)) => {
                self.on_own_heartbeat(*hadd, beat, topic, message, now, out)
            }
            (Topic::ResolvHeartbeat, Message::ResolvHeartbeat(beat)) => {
                self.on_primary_heartbeat(beat, topic, message, now, out)
            }
            (Topic::ResolvRequest, Message::Request(request)) => {
                self.answer_resolv(request, now, out)
            }
            (Topic::Lease(op), Message::Lease(request)) => self.serve_lease(*op, request, now, out),
            (Topic::ResolvLookup(kind), Message::Lease(request)) => {
                self.resolve_lease(*kind, request, now, out)
            }
            (Topic::LeaseRecord(hadd), Message::LeaseRecord(record)) => {
                self.on_lease_record(*hadd, record, now, out)
            }
            (Topic::HeartbeatOnBehalf, Message::HeartbeatOnBehalf(_)) => {
                // A node told of by the primary is one to watch, heard or not.
                for change in self.see(topic, message, now, out) {
                    if let Change::Node(hadd) = change {
                        self.watch(hadd, now);
                    }
                }
            }
            _ => self.on_map_message(topic, message, now, out),
        }
    }

    /// Takes a message into the view, counting what it refused.
    fn see(
        &mut self,
        topic: &Topic,
        message: &Message,
        now: Duration,
        out: &mut Out,
    ) -> Vec<Change> {
        let changes = self.view.apply(topic, message, now);
        for change in &changes {
            match change {
                Change::Refused(Refusal::Forged(_)) => out.push(Command::Count(Counter::Forged)),
                Change::Refused(_) => out.push(Command::Count(Counter::Fenced)),
                Change::Value(MapChange::Dropped(_)) => {
                    out.push(Command::Count(Counter::ValueDropped))
                }
                Change::Node(hadd)
                | Change::Value(MapChange::Node(hadd) | MapChange::Value { hadd, .. }) => {
                    if let Some(announcer) = &mut self.announcer {
                        announcer.description_changed(*hadd);
                    }
                }
                _ => {}
            }
        }
        changes
    }

    fn on_own_heartbeat(
        &mut self,
        hadd: Hadd,
        beat: &Heartbeat,
        topic: &Topic,
        message: &Message,
        now: Duration,
        out: &mut Out,
    ) {
        if beat.is_on_behalf() {
            // Only the primary speaks for others, and on `/dhcp/heartbeat/`.
            out.push(Command::Count(Counter::Fenced));
            return;
        }
        if !self.has_room_for(hadd) {
            out.push(Command::Count(Counter::Crowded));
            return;
        }
        self.see(topic, message, now, out);
        self.lease_heard(hadd, beat.state, now, out);
        if hadd == self.setup.hadd {
            if beat.state == NodeState::Offline {
                // Not this process's: a live primary refutes it at once.
                let actions = self.election.on_candidate_lost(hadd, now);
                self.carry_out(actions, now, out);
            }
            return;
        }
        let state = beat.state;
        let transitions = self.liveness.on_heartbeat(hadd, state, now);
        let back = transitions
            .iter()
            .any(|t| t.hadd == hadd && !t.from.is_alive() && t.from != NodeState::Unknown);
        let mut touched: Vec<Hadd> = transitions.into_iter().map(|t| t.hadd).collect();
        if state != NodeState::Offline {
            if back {
                // Back from silence (a partition healed, a restart): its period may have
                // changed meanwhile.
                self.ask_again(hadd, now, out);
            }
            self.discover_newcomer(hadd, now, out);
            return;
        }
        // Its Last Will (or clean stop) covers the other controllers of its process.
        let covered: Vec<Hadd> = self
            .view
            .map()
            .nodes()
            .filter(|node| node.hadd != hadd && node.will() == Some(hadd))
            .map(|node| node.hadd)
            .collect();
        for gone in std::iter::once(hadd).chain(covered.iter().copied()) {
            let actions = self.election.on_candidate_lost(gone, now);
            self.carry_out(actions, now, out);
        }
        for controller in covered {
            let transitions = self
                .liveness
                .on_heartbeat(controller, NodeState::Offline, now);
            touched.extend(transitions.into_iter().map(|transition| transition.hadd));
        }
        for node in touched {
            self.reconcile(node, now, out);
        }
    }

    fn on_primary_heartbeat(
        &mut self,
        beat: &ResolvHeartbeat,
        topic: &Topic,
        message: &Message,
        now: Duration,
        out: &mut Out,
    ) {
        let actions = self
            .election
            .on_primary_heartbeat(beat.hadd, beat.epoch, now);
        // The election counts what it refuses; the view follows the same fence silently.
        self.view.apply(topic, message, now);
        self.carry_out(actions, now, out);
        // A follower asks its primary for the map: when it starts following it, and again
        // after each reconnection of its own (it may have missed updates).
        if let Standing::Follower {
            primary: Some((primary, _)),
        } = self.election.standing()
        {
            if self.map_asked_of != Some(primary) {
                self.map_asked_of = Some(primary);
                self.ask(Topic::ResolvRequest, &InfoKind::ALL, out);
            }
        }
    }

    fn on_map_message(&mut self, topic: &Topic, message: &Message, now: Duration, out: &mut Out) {
        if let (Topic::ResolvReply(_) | Topic::ResolvBroadcast, Message::DiscoveryReply(reply)) =
            (topic, message)
        {
            if crate::view::epoch_of(reply)
                .is_some_and(|epoch| Some(epoch) == self.acting_epoch(now))
            {
                // Its own answer, heard back: nothing new, and maybe older than the map.
                return;
            }
        }
        if let Some(candidacy) = Candidacy::from_message(topic, message) {
            // (The election ignores its own candidacy.)
            if let Some(rank) = candidacy.rank {
                self.election.on_candidate(candidacy.hadd, rank, now);
                self.liveness
                    .set_period(candidacy.hadd, self.setup.election.interval, now);
            }
        }
        let changes = self.see(topic, message, now, out);
        if changes
            .iter()
            .any(|change| matches!(change, Change::Refused(_)))
        {
            return;
        }
        self.learn(topic, message, now);
        let changed = changes
            .iter()
            .any(|change| matches!(change, Change::Node(_) | Change::Value(_)));
        if changed {
            self.forward_to_secondaries(topic, message, now, out);
        }
    }

    /// Learns from an accepted message: heartbeat periods (node info, `heartbeat` values), and
    /// from the primary's map the states of nodes this controller has not heard itself.
    fn learn(&mut self, topic: &Topic, message: &Message, now: Duration) {
        // What the primary's map says is second hand: the nodes' own word comes first.
        let from_primary = matches!(topic, Topic::ResolvReply(_) | Topic::ResolvBroadcast);
        for (hadd, seconds) in told_periods(topic, message) {
            if seconds.is_finite() && seconds > 0.0 {
                let period = Duration::from_secs_f64(seconds.min(1e6));
                self.learn_period(hadd, period, from_primary, now);
            }
        }
        if let (true, Message::DiscoveryReply(reply)) = (from_primary, message) {
            // Nor what a primary says of itself: the original's reports itself PENDING in its
            // own map (its cache never sees its own beats); its heartbeat tells its state.
            let sender = self.view.primary().map(|(hadd, _)| hadd);
            if let DiscoveryData::Nodes(nodes) = &reply.data {
                for node in nodes
                    .values()
                    .filter(|node| node.hadd != self.setup.hadd && Some(node.hadd) != sender)
                {
                    if let Some(state) = node.state {
                        self.liveness.adopt(node.hadd, state, now);
                    }
                }
            }
        }
    }

    fn learn_period(&mut self, hadd: Hadd, period: Duration, second_hand: bool, now: Duration) {
        if second_hand {
            self.liveness.suggest_period(hadd, period, now);
        } else {
            self.liveness.set_period(hadd, period, now);
        }
    }

    /// The primary asks a controller it has never heard of for its nodes (the original's
    /// heartbeat discovery), once.
    fn discover_newcomer(&mut self, hadd: Hadd, now: Duration, out: &mut Out) {
        if self.acting_epoch(now).is_none()
            || !hadd.is_controller()
            || self.view.map().node(hadd).is_some()
            || self.asked.contains(&hadd)
            || self.asked.len() >= self.setup.liveness.max_nodes
            || !self.spend_discovery(now)
        {
            return;
        }
        self.asked.insert(hadd);
        self.ask(Topic::NodeRequest(hadd), &self.newcomer_kinds(), out);
    }

    /// What the primary asks a newcomer controller: everything, as the original's primary does
    /// (its nodes and their periods, and every genre of values). A map with less (nodes and
    /// systems only, before) left the original's secondaries without the newcomer's configs
    /// and most of its commands.
    fn newcomer_kinds(&self) -> Vec<InfoKind> {
        InfoKind::ALL.to_vec()
    }

    /// What the primary asks again of a node back from silence: its nodes and their periods
    /// (system values), and the genres Home Assistant is shown, when it is.
    fn period_kinds(&self) -> Vec<InfoKind> {
        let mut kinds = vec![InfoKind::Nodes, InfoKind::Systems];
        if let Some(announcer) = &self.announcer {
            for genre in &announcer.settings().genres {
                let kind = InfoKind::for_genre(*genre);
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        kinds
    }

    /// Whether `hadd` is known, or there is room to watch one more node.
    fn has_room_for(&self, hadd: Hadd) -> bool {
        self.liveness.state(hadd) != NodeState::Unknown
            || self.view.map().node(hadd).is_some()
            || self.liveness.len() < self.setup.liveness.max_nodes
    }

    /// Takes one discovery of a newcomer from the budget (a burst, then a steady rate), if
    /// there is one left: made-up controllers cannot make the primary ask thousands at once.
    fn spend_discovery(&mut self, now: Duration) -> bool {
        self.discovery_budget.take_one(now)
    }

    /// The primary asks the controller of `hadd` again for its nodes and their periods.
    fn ask_again(&mut self, hadd: Hadd, now: Duration, out: &mut Out) {
        if self.acting_epoch(now).is_some() {
            let controller = hadd.controller();
            self.ask(Topic::NodeRequest(controller), &self.period_kinds(), out);
        }
    }

    fn ask(&self, topic: Topic, kinds: &[InfoKind], out: &mut Out) {
        for kind in kinds {
            let request = Request::info(*kind, self.setup.hadd);
            out.publish(topic.clone(), Message::Request(request));
        }
    }

    /// The primary tells the secondaries what it learned from answers addressed to it alone
    /// (the original sent them back to itself, §9 item 7).
    fn forward_to_secondaries(
        &self,
        topic: &Topic,
        message: &Message,
        now: Duration,
        out: &mut Out,
    ) {
        let (Topic::NodeReply(to), Message::DiscoveryReply(reply)) = (topic, message) else {
            return;
        };
        let Some(epoch) = self.acting_epoch(now) else {
            return;
        };
        if *to == self.setup.hadd {
            let mut forwarded = reply.clone();
            forwarded.reply_hadd = None;
            forwarded.extra.insert("epoch".into(), Data::from(epoch));
            out.publish(Topic::ResolvBroadcast, Message::DiscoveryReply(forwarded));
        }
    }

    /// The primary answers a resolv request with its map, each node with the state the network
    /// was told of it (its liveness's judgement only for a node never told anything). A
    /// judgement not yet dispatched (in the catch-up window, say) is not passed on as told:
    /// a follower that takes over would believe the network knows it, and never tell it.
    fn answer_resolv(&mut self, request: &Request, now: Duration, out: &mut Out) {
        let (Some(kind), Some(_)) = (request.info_kind(), self.acting_epoch(now)) else {
            return;
        };
        match self.resolv.on_request(kind, request.reply_hadd, now) {
            Resolv::Answer(topic) => self.send_map(kind, request.reply_hadd, topic, now, out),
            Resolv::Coalesced => out.push(Command::Count(Counter::ResolvCoalesced)),
        }
    }

    /// Answers the resolv requests the windows held: each asker on its own topic, or all of
    /// them on the broadcast topic when too many asked.
    pub(super) fn answer_waiting_resolv(&mut self, now: Duration, out: &mut Out) {
        if self.acting_epoch(now).is_none() {
            return;
        }
        for (kind, askers) in self.resolv.due(now) {
            for reply_hadd in askers {
                self.send_map(kind, reply_hadd, answer_topic(reply_hadd), now, out);
            }
        }
    }

    /// The map of `kind`, as the answer to `reply_hadd` on `topic`.
    fn send_map(
        &mut self,
        kind: InfoKind,
        reply_hadd: Option<Hadd>,
        topic: Topic,
        now: Duration,
        out: &mut Out,
    ) {
        let Some(epoch) = self.acting_epoch(now) else {
            return;
        };
        for mut reply in self.view.map().discovery_replies(kind, reply_hadd) {
            if let DiscoveryData::Nodes(nodes) = &mut reply.data {
                for (hadd, info) in nodes.iter_mut() {
                    let state = match self.view.state(*hadd) {
                        NodeState::Unknown => self.liveness.state(*hadd),
                        told => told,
                    };
                    if state != NodeState::Unknown {
                        info.state = Some(state);
                    }
                }
            }
            reply.extra.insert("epoch".into(), Data::from(epoch));
            // How long it has been primary: a listener tells when the epoch was claimed.
            if let Some(claimed_at) = self.claimed_at {
                let held = now.saturating_sub(claimed_at).as_millis();
                reply.extra.insert(
                    PRIMARY_FOR_FIELD.into(),
                    Data::from(u64::try_from(held).unwrap_or(u64::MAX)),
                );
            }
            out.publish(topic.clone(), Message::DiscoveryReply(reply));
        }
    }

    /// Dispatches what the network must be told for it to know `node`'s state as judged here.
    pub(super) fn reconcile(&mut self, node: Hadd, now: Duration, out: &mut Out) {
        let Some(epoch) = self.acting_epoch(now) else {
            return;
        };
        if self.catch_up_at.is_some() {
            // A new primary catches up on everything at once, once the nodes have answered.
            return;
        }
        let me = self.setup.hadd;
        if node == me {
            return;
        }
        for step in steps(self.view.state(node), self.liveness.state(node)) {
            let beat = Heartbeat::on_behalf(HaddTarget::Node(node), *step, epoch, me);
            self.view.record_dispatch(node, *step, me);
            if let Some(announcer) = &mut self.announcer {
                announcer.state_changed(node);
            }
            out.publish(Topic::HeartbeatOnBehalf, Message::HeartbeatOnBehalf(beat));
            out.push(Command::Count(Counter::Dispatched));
        }
        // A node no controller ever described (its heartbeat alone was heard: made up, or its
        // controller never answered discovery) is told FAILED like any other, then forgotten
        // rather than kept for good. If it beats again, it is watched again.
        let failed = matches!(
            self.liveness.state(node),
            NodeState::Failed | NodeState::Dead
        );
        if failed && self.view.map().node(node).is_none() {
            self.liveness.forget(node);
            self.view.forget(node);
            self.forgotten.remember(node);
            self.asked.remove(&node);
            if let Some(announcer) = &mut self.announcer {
                announcer.description_changed(node);
            }
        }
    }

    /// Watches a node this controller knows of without having heard it: from what the network
    /// was told of it, from now.
    fn watch(&mut self, hadd: Hadd, now: Duration) {
        if hadd != self.setup.hadd
            && self.liveness.state(hadd) == NodeState::Unknown
            && self.liveness.len() < self.setup.liveness.max_nodes
        {
            let told = match self.view.state(hadd) {
                NodeState::Unknown => NodeState::Online,
                told => told,
            };
            self.liveness.adopt(hadd, told, now);
        }
    }

    /// A primary that has just started acting tells what its predecessor did not, and watches
    /// every node of the map, heard or not.
    pub(super) fn catch_up(&mut self, now: Duration, out: &mut Out) {
        let known: Vec<Hadd> = self
            .view
            .nodes()
            .keys()
            .copied()
            .chain(self.view.map().nodes().map(|node| node.hadd))
            .collect();
        for hadd in known {
            self.watch(hadd, now);
        }
        let nodes: Vec<Hadd> = self.liveness.states().map(|(hadd, _)| hadd).collect();
        for node in nodes {
            self.reconcile(node, now, out);
        }
    }

    pub(super) fn carry_out(&mut self, actions: Vec<ElectionAction>, now: Duration, out: &mut Out) {
        let mut acting_anew = false;
        for action in actions {
            match action {
                ElectionAction::BecomePrimary { epoch } => {
                    self.view.claimed(self.setup.hadd, epoch);
                    self.claimed_at = Some(now);
                    // Cold start, or a map to refresh: ask everyone for everything (and so
                    // learn every node's period from the node itself, before catching up).
                    self.ask(Topic::BroadcastRequest, &InfoKind::ALL, out);
                    acting_anew = true;
                }
                ElectionAction::Resume { .. } => {
                    // Periods may have changed while it was away: ask the nodes themselves.
                    self.ask(
                        Topic::BroadcastRequest,
                        &[InfoKind::Nodes, InfoKind::Systems],
                        out,
                    );
                    acting_anew = true;
                }
                ElectionAction::SendPrimaryHeartbeat { epoch } => {
                    let beat = ResolvHeartbeat {
                        hadd: self.setup.hadd,
                        state: NodeState::Online,
                        epoch: Some(epoch),
                    };
                    out.publish(Topic::ResolvHeartbeat, Message::ResolvHeartbeat(beat));
                }
                ElectionAction::Announce => {
                    let (topic, message) = self.candidacy(now).to_publication();
                    out.publish(topic, message);
                }
                ElectionAction::Fenced { .. } | ElectionAction::Unconfirmed { .. } => {
                    out.push(Command::Count(Counter::Fenced))
                }
                ElectionAction::Forged { .. } | ElectionAction::Unannounced { .. } => {
                    out.push(Command::Count(Counter::Forged))
                }
                ElectionAction::OfflineRefuted { .. } => {
                    out.push(Command::Count(Counter::OfflineRefuted))
                }
                ElectionAction::StepDown { .. }
                | ElectionAction::Following { .. }
                | ElectionAction::PrimaryLost { .. }
                | ElectionAction::OfflineDoubted { .. }
                | ElectionAction::Hold { .. } => {}
            }
            let noted = !matches!(
                action,
                ElectionAction::SendPrimaryHeartbeat { .. }
                    | ElectionAction::Announce
                    | ElectionAction::Fenced { .. }
                    | ElectionAction::Unconfirmed { .. }
            );
            if noted {
                out.push(Command::Note(Note::Election(action)));
            }
        }
        if acting_anew {
            // The nodes were asked for their periods just now: their answers come first.
            self.catch_up_at = Some(now + self.setup.election.interval);
        }
    }

    fn candidacy(&self, now: Duration) -> Candidacy {
        Candidacy {
            hadd: self.setup.hadd,
            rank: Some(self.setup.rank),
            primary: self.acting_epoch(now).is_some(),
            epoch: self.epoch(),
        }
    }
}
