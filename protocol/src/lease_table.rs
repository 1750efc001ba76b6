//! The lease table a primary serves dynamic addresses from (`hadd = "auto"`), with the
//! original `janitoo_dhcp`'s messages and allocation rules: sans-IO, every decision at an
//! explicit `now`, every change returned for the caller to publish and store.
//!
//! - A new controller gets the highest controller address known + 1, never below
//!   [`CONTROLLER_FLOOR`]; a new node gets its controller's highest node + 1. "Known" is every
//!   lease and every address the caller says is taken (heard on the network, or fixed on the
//!   map), so a dynamic address never lands on a fixed one.
//! - A lease is confirmed by a heartbeat from its address. One not confirmed within
//!   [`CONFIRM_WITHIN`] is withdrawn, and unconfirmed leases are capped per controller and in
//!   all: a stranger asking again and again cannot use the addresses up.
//! - Asking again with the same name and location (an answer lost) gets the same lease.
//! - Every malformed or impossible request is refused with a 400 whose `msg_error` names the
//!   field.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::fields::Data;
use crate::lease::{HeldLease, LeasePart, LeaseRecord, LeaseReply, LeaseRequest, Timestamp};
use crate::model::NodeState;
use crate::topic::LeaseOp;
use crate::Hadd;

/// The lowest controller address leased (the original's floor).
pub const CONTROLLER_FLOOR: u16 = 10;
/// The highest controller address leased: 9xxx are the operators' tools (`jnt_query` is
/// 9999/9990).
pub const CONTROLLER_CEILING: u16 = 8999;
/// The highest node address leased under a controller.
pub const NODE_CEILING: u16 = 9999;
/// How long a lease waits for a heartbeat from its address before it is withdrawn.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(600);
/// Unconfirmed leases at most, in all.
pub const MAX_UNCONFIRMED: usize = 64;
/// Unconfirmed leases at most under one controller (a bus and its components ask together).
pub const MAX_UNCONFIRMED_PER_CONTROLLER: usize = 16;
/// Leases a table holds at most (granted here or replicated): a stranger's records cost
/// bounded memory.
pub const MAX_LEASES: usize = 20_000;
/// What a refused lock says when the address is another node's now (the asker moves).
pub const LEASED_TO_ANOTHER: &str = "leased to another node";
/// The longest name or location accepted.
pub const MAX_TEXT: usize = 128;

/// A lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The leased address.
    pub hadd: Hadd,
    /// The node's name, as it asked.
    pub name: String,
    /// Its location.
    pub location: String,
    /// Its command classes, as it gave them (the original stores text such as `"0x0000"`).
    pub cmd_classes: Data,
    /// BOOT when leased or locked, ONLINE once heard, OFFLINE when released.
    pub state: NodeState,
    /// When it was granted (the table's clock).
    pub granted: Duration,
    /// A heartbeat came from its address.
    pub confirmed: bool,
    /// When its address was last heard, wall-clock milliseconds.
    pub last_seen_ms: Option<i64>,
    /// The epoch of the primary that granted it.
    pub epoch: u64,
}

impl Lease {
    /// Its record, for `/dhcp/leases/<hadd>`.
    pub fn record(&self) -> LeaseRecord {
        LeaseRecord {
            epoch: self.epoch,
            held: Some(HeldLease {
                name: self.name.clone(),
                location: self.location.clone(),
                cmd_classes: self.cmd_classes.clone(),
                state: self.state,
                confirmed: self.confirmed,
                last_seen_ms: self.last_seen_ms,
            }),
        }
    }

    /// The lease of `hadd` a record holds, as this table keeps it from `now`: an unconfirmed
    /// lease has its whole [`CONFIRM_WITHIN`] again (the granting primary's clock is not
    /// this one's). `None` for a removal.
    pub fn from_record(hadd: Hadd, record: &LeaseRecord, now: Duration) -> Option<Lease> {
        let held = record.held.as_ref()?;
        Some(Lease {
            hadd,
            name: held.name.clone(),
            location: held.location.clone(),
            cmd_classes: held.cmd_classes.clone(),
            state: held.state,
            granted: now,
            confirmed: held.confirmed,
            last_seen_ms: held.last_seen_ms,
            epoch: record.epoch,
        })
    }

    /// The lease's columns in an answer, as the original's server writes them.
    fn reply(&self, rep_uuid: &str) -> LeaseReply {
        LeaseReply {
            add_ctrl: Some(LeasePart::Number(self.hadd.ctrl.into())),
            add_node: Some(LeasePart::Number(self.hadd.node.into())),
            name: Some(self.name.clone()),
            location: Some(self.location.clone()),
            cmd_classes: Some(self.cmd_classes.clone()),
            state: Some(self.state),
            last_seen: self.last_seen_ms.map(Timestamp::Millis),
            ..LeaseReply::status(200, rep_uuid)
        }
    }
}

/// A change of the table, for the caller to publish (retained) and store.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseChange {
    /// This lease is granted or changed.
    Put(Lease),
    /// The lease of this address is gone.
    Removed(Hadd),
}

/// What serving a request gave: the answer for `/reply/<rep_uuid>` (none when the request
/// names no `rep_uuid` to answer on), and the changes of the table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Served {
    /// The answer.
    pub reply: Option<LeaseReply>,
    /// The changes.
    pub changes: Vec<LeaseChange>,
}

/// The table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeaseTable {
    leases: BTreeMap<Hadd, Lease>,
}

/// A refusal: the field, and what was wrong with it.
type Refusal = String;

/// The address part of a request, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    /// `-1`: allocate one (or, for release and remove, every node).
    Any,
    /// This number.
    At(u16),
}

fn part(value: &LeasePart, field: &str) -> Result<Part, Refusal> {
    match value {
        LeasePart::Number(-1) => Ok(Part::Any),
        LeasePart::Number(number) => u16::try_from(*number)
            .ok()
            .filter(|number| *number <= NODE_CEILING)
            .map(Part::At)
            .ok_or_else(|| format!("{field}: expected -1 or 0 to {NODE_CEILING}, got {number}")),
        LeasePart::Text(text) => Err(format!("{field}: expected a number, got {text:?}")),
    }
}

/// The `options` text `key`: present, not empty, not too long.
fn text_option(options: &BTreeMap<String, Data>, key: &str) -> Result<String, Refusal> {
    match options.get(key) {
        None => Err(format!("options.{key}: missing")),
        Some(Value::String(text)) if text.trim().is_empty() => Err(format!("options.{key}: empty")),
        Some(Value::String(text)) if text.chars().count() > MAX_TEXT => {
            Err(format!("options.{key}: longer than {MAX_TEXT} characters"))
        }
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!("options.{key}: expected text, got {other}")),
    }
}

/// What a new or repaired lease is asked for with.
struct Asked {
    name: String,
    location: String,
    cmd_classes: Data,
}

impl Asked {
    /// The lease of `hadd` granted now for it, in state BOOT, not confirmed yet.
    fn lease(self, hadd: Hadd, context: Context, last_seen_ms: Option<i64>) -> Lease {
        Lease {
            hadd,
            name: self.name,
            location: self.location,
            cmd_classes: self.cmd_classes,
            state: NodeState::Boot,
            granted: context.now,
            confirmed: false,
            last_seen_ms,
            epoch: context.epoch,
        }
    }
}

fn asked(request: &LeaseRequest) -> Result<Asked, Refusal> {
    let options = request
        .options
        .as_ref()
        .ok_or_else(|| "options: missing (name and location are required)".to_owned())?;
    Ok(Asked {
        name: text_option(options, "name")?,
        location: text_option(options, "location")?,
        cmd_classes: options
            .get("cmd_classes")
            .cloned()
            .unwrap_or_else(|| Value::from("0x0000")),
    })
}

fn refused(rep_uuid: &str, why: Refusal) -> LeaseReply {
    LeaseReply {
        msg_error: Some(why),
        ..LeaseReply::status(400, rep_uuid)
    }
}

/// The clock and the network a request is served against.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Addresses in use besides the leases: heard on the network, or fixed on the map.
    pub taken: &'a BTreeSet<Hadd>,
    /// The table's clock.
    pub now: Duration,
    /// The epoch of the primary serving.
    pub epoch: u64,
}

impl LeaseTable {
    /// An empty table.
    pub fn new() -> Self {
        LeaseTable::default()
    }

    /// The lease of `hadd`.
    pub fn get(&self, hadd: Hadd) -> Option<&Lease> {
        self.leases.get(&hadd)
    }

    /// Every lease, by address.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// How many leases.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Serves `/dhcp/lease/<op>`.
    pub fn serve(&mut self, op: LeaseOp, request: &LeaseRequest, context: Context) -> Served {
        if request.rep_uuid.trim().is_empty() {
            // No topic to answer on: nothing is done for it.
            return Served::default();
        }
        let outcome = self.decide(op, request, context);
        let rep_uuid = request.rep_uuid.as_str();
        match outcome {
            Ok((lease, changes)) => Served {
                reply: Some(lease.reply(rep_uuid)),
                changes,
            },
            Err(why) => Served {
                reply: Some(refused(rep_uuid, why)),
                changes: Vec::new(),
            },
        }
    }

    /// Answers `/dhcp/resolv/hadd`: the lease of the address asked.
    pub fn resolve(&self, request: &LeaseRequest) -> Option<LeaseReply> {
        let rep_uuid = request.rep_uuid.as_str();
        if rep_uuid.trim().is_empty() {
            return None;
        }
        let found = (|| {
            let hadd = exact(request)?;
            self.leases
                .get(&hadd)
                .ok_or_else(|| format!("add_node: no lease for {hadd}"))
        })();
        Some(match found {
            Ok(lease) => lease.reply(rep_uuid),
            Err(why) => refused(rep_uuid, why),
        })
    }

    fn decide(
        &mut self,
        op: LeaseOp,
        request: &LeaseRequest,
        context: Context,
    ) -> Result<(Lease, Vec<LeaseChange>), Refusal> {
        match op {
            LeaseOp::New => {
                let asked = asked(request)?;
                let ctrl = part(&request.add_ctrl, "add_ctrl")?;
                let node = part(&request.add_node, "add_node")?;
                let controller_wanted = match (ctrl, node) {
                    (Part::Any, Part::Any | Part::At(0)) => None,
                    (Part::Any, Part::At(_)) => {
                        return Err("add_node: -1 or 0 for a new controller".to_owned())
                    }
                    (Part::At(ctrl), Part::Any) => Some(ctrl),
                    (Part::At(_), Part::At(_)) => {
                        return Err(
                            "add_node: -1 (allocate one); repair keeps a given address".to_owned()
                        )
                    }
                };
                self.grant(controller_wanted, asked, context)
            }
            LeaseOp::Repair => {
                let asked = asked(request)?;
                let hadd = exact(request)?;
                let held = self.leases.get(&hadd);
                let ours = held.is_some_and(|lease| lease.name == asked.name);
                let free = held.is_none() && !context.taken.contains(&hadd);
                if ours || free {
                    let last_seen_ms = held.and_then(|lease| lease.last_seen_ms);
                    let lease = asked.lease(hadd, context, last_seen_ms);
                    self.leases.insert(hadd, lease.clone());
                    return Ok((lease.clone(), vec![LeaseChange::Put(lease)]));
                }
                // Someone else has it: a new address, as for a new lease.
                let controller = (!hadd.is_controller()).then_some(hadd.ctrl);
                self.grant(controller, asked, context)
            }
            LeaseOp::Lock => {
                let hadd = exact(request)?;
                let lease = self
                    .leases
                    .get_mut(&hadd)
                    .ok_or_else(|| format!("add_node: no lease for {hadd}"))?;
                // A lock that names its node (ours do) is refused when the address is another
                // node's now (two primaries leased it apart, and the other stood): it asks anew.
                let named = request
                    .options
                    .as_ref()
                    .and_then(|options| options.get("name"));
                if let Some(Value::String(name)) = named {
                    if *name != lease.name {
                        return Err(format!(
                            "options.name: {hadd} is {LEASED_TO_ANOTHER} ({:?})",
                            lease.name
                        ));
                    }
                }
                lease.state = NodeState::Boot;
                Ok((lease.clone(), vec![LeaseChange::Put(lease.clone())]))
            }
            LeaseOp::Release => {
                let covered = self.covered(request)?;
                let mut changes = Vec::new();
                for hadd in &covered {
                    if let Some(lease) = self.leases.get_mut(hadd) {
                        lease.state = NodeState::Offline;
                        changes.push(LeaseChange::Put(lease.clone()));
                    }
                }
                let first = self.leases[&covered[0]].clone();
                Ok((first, changes))
            }
            LeaseOp::Remove => {
                let covered = self.covered(request)?;
                let first = self.leases[&covered[0]].clone();
                let changes = covered
                    .iter()
                    .filter_map(|hadd| self.leases.remove(hadd))
                    .map(|lease| LeaseChange::Removed(lease.hadd))
                    .collect();
                Ok((first, changes))
            }
        }
    }

    /// The leases a release or a remove covers: one address, or every node of a controller
    /// (`add_node` -1); at least one.
    fn covered(&self, request: &LeaseRequest) -> Result<Vec<Hadd>, Refusal> {
        let ctrl = match part(&request.add_ctrl, "add_ctrl")? {
            Part::At(ctrl) => ctrl,
            Part::Any => return Err("add_ctrl: a controller address, not -1".to_owned()),
        };
        let covered: Vec<Hadd> = match part(&request.add_node, "add_node")? {
            Part::At(node) => self
                .leases
                .contains_key(&Hadd::new(ctrl, node))
                .then_some(Hadd::new(ctrl, node))
                .into_iter()
                .collect(),
            Part::Any => self
                .leases
                .range(Hadd::new(ctrl, 0)..=Hadd::new(ctrl, u16::MAX))
                .map(|(hadd, _)| *hadd)
                .collect(),
        };
        if covered.is_empty() {
            return Err(format!("add_node: no lease under {}", Hadd::new(ctrl, 0)));
        }
        Ok(covered)
    }

    /// A new lease: a controller (`controller` None) or a node of `controller`; the same one
    /// again for the same name and location while it is unconfirmed.
    fn grant(
        &mut self,
        controller: Option<u16>,
        asked: Asked,
        context: Context,
    ) -> Result<(Lease, Vec<LeaseChange>), Refusal> {
        let again = self.leases.values().find(|lease| {
            !lease.confirmed
                && lease.name == asked.name
                && lease.location == asked.location
                && match controller {
                    None => lease.hadd.is_controller(),
                    Some(ctrl) => lease.hadd.ctrl == ctrl && !lease.hadd.is_controller(),
                }
        });
        if let Some(lease) = again {
            return Ok((lease.clone(), Vec::new()));
        }
        if self.leases.len() >= MAX_LEASES {
            return Err(format!(
                "add_ctrl: the table holds {MAX_LEASES} leases already"
            ));
        }
        let unconfirmed = self.leases.values().filter(|lease| !lease.confirmed);
        if unconfirmed.clone().count() >= MAX_UNCONFIRMED {
            return Err(format!(
                "add_ctrl: {MAX_UNCONFIRMED} leases wait for their first heartbeat already"
            ));
        }
        let hadd = match controller {
            None => self.next_controller(context.taken)?,
            Some(ctrl) => {
                let known = self.leases.contains_key(&Hadd::new(ctrl, 0))
                    || context.taken.iter().any(|hadd| hadd.ctrl == ctrl);
                if !known {
                    return Err(format!(
                        "add_ctrl: no controller {} on the network",
                        Hadd::new(ctrl, 0)
                    ));
                }
                let waiting = unconfirmed.filter(|lease| lease.hadd.ctrl == ctrl).count();
                if waiting >= MAX_UNCONFIRMED_PER_CONTROLLER {
                    return Err(format!(
                        "add_ctrl: {MAX_UNCONFIRMED_PER_CONTROLLER} leases under {} wait for their first heartbeat already",
                        Hadd::new(ctrl, 0)
                    ));
                }
                self.next_node(ctrl, context.taken)?
            }
        };
        let lease = asked.lease(hadd, context, None);
        self.leases.insert(hadd, lease.clone());
        Ok((lease.clone(), vec![LeaseChange::Put(lease)]))
    }

    /// The highest controller known + 1 (at least the floor); the lowest free one when the
    /// ceiling is reached.
    fn next_controller(&self, taken: &BTreeSet<Hadd>) -> Result<Hadd, Refusal> {
        let used: BTreeSet<u16> = self
            .leases
            .keys()
            .chain(taken.iter())
            .map(|hadd| hadd.ctrl)
            .filter(|ctrl| *ctrl <= CONTROLLER_CEILING)
            .collect();
        let next = used.last().map_or(CONTROLLER_FLOOR, |highest| {
            (highest + 1).max(CONTROLLER_FLOOR)
        });
        let ctrl = (next <= CONTROLLER_CEILING)
            .then_some(next)
            .or_else(|| (CONTROLLER_FLOOR..=CONTROLLER_CEILING).find(|c| !used.contains(c)))
            .ok_or_else(|| "add_ctrl: every controller address is in use".to_owned())?;
        Ok(Hadd::new(ctrl, 0))
    }

    /// The highest node known under `ctrl` + 1; the lowest free one when the ceiling is
    /// reached.
    fn next_node(&self, ctrl: u16, taken: &BTreeSet<Hadd>) -> Result<Hadd, Refusal> {
        let used: BTreeSet<u16> = self
            .leases
            .keys()
            .chain(taken.iter())
            .filter(|hadd| hadd.ctrl == ctrl)
            .map(|hadd| hadd.node)
            .collect();
        let next = used
            .last()
            .map_or(1, |highest| highest.saturating_add(1).max(1));
        let node = (next <= NODE_CEILING)
            .then_some(next)
            .or_else(|| (1..=NODE_CEILING).find(|n| !used.contains(n)))
            .ok_or_else(|| format!("add_node: every node address under {ctrl:04} is in use"))?;
        Ok(Hadd::new(ctrl, node))
    }

    /// A heartbeat came from `hadd` in `state` at wall-clock `wall_ms`: its lease is confirmed
    /// and its state and last sighting follow; a change only when the lease's columns move
    /// (the first confirmation, or a new state).
    pub fn heard(&mut self, hadd: Hadd, state: NodeState, wall_ms: i64) -> Option<LeaseChange> {
        let lease = self.leases.get_mut(&hadd)?;
        lease.last_seen_ms = Some(wall_ms);
        let changed = !lease.confirmed || lease.state != state;
        lease.confirmed = true;
        lease.state = state;
        changed.then(|| LeaseChange::Put(lease.clone()))
    }

    /// Withdraws the leases not confirmed within [`CONFIRM_WITHIN`] of being granted.
    pub fn expire(&mut self, now: Duration) -> Vec<LeaseChange> {
        let stale: Vec<Hadd> = self
            .leases
            .values()
            .filter(|lease| !lease.confirmed && now.saturating_sub(lease.granted) >= CONFIRM_WITHIN)
            .map(|lease| lease.hadd)
            .collect();
        stale
            .into_iter()
            .filter_map(|hadd| self.leases.remove(&hadd))
            .map(|lease| LeaseChange::Removed(lease.hadd))
            .collect()
    }
}

/// What a lease replicated from a primary (its retained publication) did to this table.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Taken as it came (new, or newer than what was held for the same node).
    Taken,
    /// Already held as it is, or older than what is held: nothing changed.
    Unchanged,
    /// A new address while the table holds [`MAX_LEASES`]: not kept.
    Full,
    /// Two nodes were leased the same address (two primaries apart, in a partition): the lease
    /// of the higher epoch stands (the lower name on a tie); the other node must `repair`.
    Conflict {
        /// The lease that stands.
        kept: Box<Lease>,
        /// The lease that lost its address.
        displaced: Box<Lease>,
    },
}

impl LeaseTable {
    /// Applies a lease another primary granted or changed (its `epoch` says which primary).
    pub fn apply(&mut self, incoming: Lease) -> Applied {
        let Some(held) = self.leases.get(&incoming.hadd) else {
            if self.leases.len() >= MAX_LEASES {
                return Applied::Full;
            }
            self.leases.insert(incoming.hadd, incoming);
            return Applied::Taken;
        };
        if *held == incoming {
            return Applied::Unchanged;
        }
        if held.name == incoming.name {
            if incoming.epoch < held.epoch {
                return Applied::Unchanged;
            }
            self.leases.insert(incoming.hadd, incoming);
            return Applied::Taken;
        }
        let incoming_wins = (incoming.epoch, std::cmp::Reverse(&incoming.name))
            > (held.epoch, std::cmp::Reverse(&held.name));
        let held = held.clone();
        let (kept, displaced) = if incoming_wins {
            (incoming, held)
        } else {
            (held, incoming)
        };
        self.leases.insert(kept.hadd, kept.clone());
        Applied::Conflict {
            kept: Box::new(kept),
            displaced: Box::new(displaced),
        }
    }

    /// Applies the removal of the lease of `hadd` by the primary of `epoch`: a lease granted
    /// since by a later primary stays.
    pub fn apply_removed(&mut self, hadd: Hadd, epoch: u64) -> bool {
        if self
            .leases
            .get(&hadd)
            .is_some_and(|held| held.epoch <= epoch)
        {
            return self.leases.remove(&hadd).is_some();
        }
        false
    }
}

/// The exact address a request names (no -1).
fn exact(request: &LeaseRequest) -> Result<Hadd, Refusal> {
    match (
        part(&request.add_ctrl, "add_ctrl")?,
        part(&request.add_node, "add_node")?,
    ) {
        (Part::At(ctrl), Part::At(node)) => Ok(Hadd::new(ctrl, node)),
        (Part::Any, _) => Err("add_ctrl: an address, not -1".to_owned()),
        (_, Part::Any) => Err("add_node: an address, not -1".to_owned()),
    }
}

#[cfg(test)]
mod tests;
