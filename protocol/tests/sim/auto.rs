//! Auto nodes (`hadd = "auto"`): processes that lease a controller address from whoever is
//! primary, with the product's own asking side ([`LeaseClient`]), then beat on it. As the
//! product's controller does while it runs, each one watches its lease: a record naming
//! another node at its address, or a new primary, makes it lock its lease again in its own
//! name; refused as another node's, it leases anew (the product restarts, and its `repair`
//! gets it a new address the same way). And as the product's bridge does, it hears its own
//! address's heartbeat topic ([`OwnBeats`]): another process beating there (a fixed node the
//! primary never heard when it leased the address) makes it release the lease and lease anew.

use std::collections::BTreeMap;
use std::time::Duration;

use janitoo_protocol::duplicate::OwnBeats;
use janitoo_protocol::lease_client::{LeaseAction, LeaseClient, Wanted};
use janitoo_protocol::lease_table::LEASED_TO_ANOTHER;
use janitoo_protocol::{
    Data, Hadd, Heartbeat, LeaseOp, LeasePart, LeaseRecord, LeaseRequest, Message, NodeState, Topic,
};

use super::broker::Delivery;
use super::*;

/// How long a check waits for the primary's answer (the product's `LOCK_WAIT`).
const CHECK_WAIT: Duration = Duration::from_secs(3);
/// Locks tried per check (the product's `CHECK_TRIES`).
const CHECK_TRIES: u32 = 3;
/// How long after a new primary's first heartbeat a node locks again, at most (the product's
/// `RELOCK_SPREAD`).
const RELOCK_SPREAD_MS: u64 = 3_000;
/// The asking side's timer.
const TICK: Duration = Duration::from_millis(250);

pub(super) struct AutoSim {
    pub name: String,
    pub process: Process,
    pub period: Duration,
    /// The asking side, while it asks.
    asking: Option<LeaseClient>,
    pub leased: Option<Hadd>,
    /// Its beats' timer generation: a new lease (or none) stops the old beats.
    beats: u32,
    /// The primary's epoch last heard.
    epoch: Option<u64>,
    /// The check waiting for its answer, until when, and its try.
    checking: Option<(String, Duration, u32)>,
    asked: u64,
    pub moves: u32,
    /// Moves because another process beat on its address.
    pub shared_moves: u32,
    /// Its beats, sent and heard back.
    own: OwnBeats,
}

impl AutoSim {
    pub fn new(name: String, client: usize, period: Duration) -> AutoSim {
        AutoSim {
            name,
            process: Process::new(client),
            period,
            asking: None,
            leased: None,
            beats: 0,
            epoch: None,
            checking: None,
            asked: 0,
            moves: 0,
            shared_moves: 0,
            own: OwnBeats::default(),
        }
    }

    fn ask(&mut self, now: Duration) -> Vec<LeaseAction> {
        let prefix = format!("{}-{}", self.name, self.moves);
        let mut client = LeaseClient::new(
            Wanted::Controller,
            &self.name,
            "sim",
            Data::from("0x0000"),
            &prefix,
        );
        let actions = client.start(now);
        self.asking = Some(client);
        actions
    }
}

/// The filters of an auto node's process.
pub(super) fn auto_filters() -> Vec<String> {
    vec![
        "/reply/+".to_owned(),
        "/dhcp/leases/#".to_owned(),
        "/dhcp/resolv/heartbeat".to_owned(),
        "/dhcp/heartbeat/#".to_owned(),
    ]
}

impl World {
    pub(super) fn auto_start(&mut self, auto: usize) {
        let now = self.now;
        let sim = &mut self.autos[auto];
        sim.process.running = true;
        let client = sim.process.client;
        let actions = sim.ask(now);
        let delay = self.jitter(0, 300);
        self.after(delay, Event::Connect(client));
        self.after(TICK, Event::AutoTick { auto });
        self.auto_carry_out(auto, actions);
    }

    pub(super) fn auto_tick(&mut self, auto: usize) {
        let now = self.now;
        let sim = &mut self.autos[auto];
        if !sim.process.running {
            return;
        }
        let mut retry = None;
        if let Some((_, until, tries)) = sim.checking {
            if now >= until {
                // Unanswered: tried again, then left to the next record or primary.
                sim.checking = None;
                retry = (tries < CHECK_TRIES).then_some(tries + 1);
            }
        }
        let actions = sim
            .asking
            .as_mut()
            .map(|client| client.on_tick(now))
            .unwrap_or_default();
        self.after(TICK, Event::AutoTick { auto });
        self.auto_carry_out(auto, actions);
        if let Some(tries) = retry {
            let beats = self.autos[auto].beats;
            self.auto_lock(auto, beats, tries);
        }
    }

    pub(super) fn auto_beat(&mut self, auto: usize, beats: u32) {
        let sim = &self.autos[auto];
        let Some(hadd) = sim
            .leased
            .filter(|_| sim.process.running && sim.beats == beats)
        else {
            return;
        };
        let (client, period) = (sim.process.client, sim.period);
        let next = period + self.jitter(0, 2);
        self.after(next, Event::AutoBeat { auto, beats });
        let now = self.now;
        self.autos[auto].own.sent(hadd, now);
        let beat = Heartbeat::own(hadd, NodeState::Online);
        self.publish(
            client,
            Topic::Heartbeat(hadd),
            Message::Heartbeat(beat),
            false,
        );
    }

    fn auto_carry_out(&mut self, auto: usize, actions: Vec<LeaseAction>) {
        for action in actions {
            match action {
                LeaseAction::Send { op, request } => {
                    let client = self.autos[auto].process.client;
                    self.publish(client, Topic::Lease(op), Message::Lease(request), false);
                }
                LeaseAction::Leased(hadd) => {
                    let sim = &mut self.autos[auto];
                    sim.leased = Some(hadd);
                    sim.own = OwnBeats::new([hadd]);
                    sim.asking = None;
                    sim.beats += 1;
                    let (beats, name) = (sim.beats, sim.name.clone());
                    self.log
                        .push(format!("{:?} {name}: leased {hadd}", self.now));
                    let first = self.jitter(0, 200);
                    self.after(first, Event::AutoBeat { auto, beats });
                }
                LeaseAction::Refused(_) | LeaseAction::Unanswered { .. } => {}
            }
        }
    }

    /// A live delivery: an answer, or the primary's heartbeat.
    pub(super) fn auto_receives(&mut self, auto: usize, delivery: Delivery) {
        if !self.autos[auto].process.running {
            return;
        }
        match &delivery.packet.message {
            Message::LeaseReply(reply) => {
                let now = self.now;
                let sim = &mut self.autos[auto];
                let checked = sim
                    .checking
                    .as_ref()
                    .is_some_and(|(rep_uuid, _, _)| *rep_uuid == reply.rep_uuid);
                if checked {
                    sim.checking = None;
                    let displaced = reply.msg_status == 400
                        && reply
                            .msg_error
                            .as_deref()
                            .is_some_and(|why| why.contains(LEASED_TO_ANOTHER));
                    if displaced {
                        let name = sim.name.clone();
                        let from = sim.leased.take();
                        sim.beats += 1;
                        sim.moves += 1;
                        let actions = sim.ask(now);
                        self.log.push(format!(
                            "{now:?} {name}: {from:?} is another node's: moving"
                        ));
                        self.auto_carry_out(auto, actions);
                    }
                    return;
                }
                let actions = sim
                    .asking
                    .as_mut()
                    .map(|client| client.on_reply(reply, now))
                    .unwrap_or_default();
                self.auto_carry_out(auto, actions);
            }
            Message::ResolvHeartbeat(beat) => {
                let sim = &mut self.autos[auto];
                let new = beat.epoch.is_some()
                    && sim.epoch.is_some_and(|known| Some(known) != beat.epoch);
                sim.epoch = beat.epoch.or(sim.epoch);
                if new && sim.leased.is_some() {
                    let wait = self.jitter(0, RELOCK_SPREAD_MS);
                    let beats = self.autos[auto].beats;
                    self.after(wait, Event::AutoCheck { auto, beats });
                }
            }
            Message::LeaseRecord(record) => {
                if let Topic::LeaseRecord(hadd) = delivery.packet.topic {
                    self.auto_heard_record(auto, hadd, record);
                }
            }
            Message::Heartbeat(_) => {
                if let Topic::Heartbeat(hadd) = delivery.packet.topic {
                    self.auto_heard_beat(auto, hadd);
                }
            }
            _ => {}
        }
    }

    /// A beat on `hadd`: another process's, the third within the window, on its own address
    /// makes it move (the product's controller stops, which releases its leases, and leases
    /// that node anew).
    fn auto_heard_beat(&mut self, auto: usize, hadd: Hadd) {
        let now = self.now;
        let sim = &mut self.autos[auto];
        if sim.leased != Some(hadd) || sim.own.heard(hadd, now).is_none() {
            return;
        }
        // Never a move without another beater: a fixed node of that address, or another auto
        // node on it.
        let another = self.nodes.iter().any(|n| n.hadds.contains(&hadd))
            || self
                .autos
                .iter()
                .enumerate()
                .any(|(at, other)| at != auto && other.leased == Some(hadd));
        if !another {
            self.oracle.violations.push(format!(
                "{now:?} auto{auto} moved off {hadd} though no other process beats there"
            ));
        }
        let sim = &mut self.autos[auto];
        sim.leased = None;
        sim.beats += 1;
        sim.moves += 1;
        sim.shared_moves += 1;
        sim.asked += 1;
        let (client, name) = (sim.process.client, sim.name.clone());
        let release = LeaseRequest {
            rep_uuid: format!("{name}-release-{}", sim.asked),
            add_ctrl: LeasePart::Number(hadd.ctrl.into()),
            add_node: LeasePart::Number(hadd.node.into()),
            options: None,
        };
        let actions = sim.ask(now);
        self.log.push(format!(
            "{now:?} {name}: another process beats on {hadd}: moving"
        ));
        self.publish(
            client,
            Topic::Lease(LeaseOp::Release),
            Message::Lease(release),
            false,
        );
        self.auto_carry_out(auto, actions);
    }

    /// A lease record (retained, or live): another node's name at its address is checked.
    pub(super) fn auto_heard_record(&mut self, auto: usize, hadd: Hadd, record: &LeaseRecord) {
        let sim = &self.autos[auto];
        let another = record
            .held
            .as_ref()
            .is_some_and(|held| held.name != sim.name);
        if sim.process.running && sim.leased == Some(hadd) && another {
            let beats = sim.beats;
            self.auto_check(auto, beats);
        }
    }

    /// Locks its lease in its own name (a check's first try).
    pub(super) fn auto_check(&mut self, auto: usize, beats: u32) {
        if self.autos[auto].checking.is_none() {
            self.auto_lock(auto, beats, 1);
        }
    }

    fn auto_lock(&mut self, auto: usize, beats: u32, tries: u32) {
        let now = self.now;
        let sim = &mut self.autos[auto];
        let Some(hadd) = sim
            .leased
            .filter(|_| sim.beats == beats && sim.process.running)
        else {
            return;
        };
        sim.asked += 1;
        let rep_uuid = format!("{}-check-{}", sim.name, sim.asked);
        sim.checking = Some((rep_uuid.clone(), now + CHECK_WAIT, tries));
        let options = BTreeMap::from([
            ("name".to_owned(), Data::from(sim.name.as_str())),
            ("location".to_owned(), Data::from("sim")),
        ]);
        let request = LeaseRequest {
            rep_uuid,
            add_ctrl: LeasePart::Number(hadd.ctrl.into()),
            add_node: LeasePart::Number(hadd.node.into()),
            options: Some(options),
        };
        let client = sim.process.client;
        self.publish(
            client,
            Topic::Lease(LeaseOp::Lock),
            Message::Lease(request),
            false,
        );
    }
}
