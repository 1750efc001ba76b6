//! What the web manager knows of the network, and the updates it pushes to open pages. The
//! knowledge is the protocol's [`NetworkView`], the same model (and the same fencing) as the
//! network core's and `janitoo status`'s; this module only turns it into JSON. Pure: messages
//! in, JSON events out, no I/O.
//!
//! Events, as JSON objects with a `type`:
//! - `snapshot`: `primary`, `controllers`, `nodes`, `values` (sent when a page connects);
//! - `controller`, `node`, `value`: one entry changed (the same shape as in the snapshot);
//! - `primary`: the primary network controller and its epoch (`hadd` null when it is gone);
//! - `reply`: the answer to a set made from a page (`request_id`, `status`, `error`, `value`);
//! - `lease`: a lease as the primary published it (`lease`: `hadd`, `name`, `location`,
//!   `state`, `confirmed`, `last_seen_ms`, `epoch`), or its removal (`removed`: the address).
//!
//! Memory is bounded by the network's size: a value's update replaces its entry.

use std::collections::BTreeMap;
use std::time::Duration;

use janitoo_protocol::candidacy::CANDIDACY_UUID;
use janitoo_protocol::duplicate::{SHARED_ADDRESS, SHARED_SHOWN_FOR};
use janitoo_protocol::lease_table::MAX_LEASES;
use janitoo_protocol::network_map::MapChange;
use janitoo_protocol::view::{Change, NetworkView};
use janitoo_protocol::{
    CommandClass, Data, Genre, Hadd, HeldLease, Message, Topic, ValueDescriptor,
};
use serde_json::json;

/// The network as the web manager sees it.
#[derive(Debug)]
pub struct WebModel {
    view: NetworkView,
    /// Sets sent from a page and not answered yet, by node, value and instance: their request
    /// id and data. The original's nodes answer config and system sets on the value's topic
    /// only, without the request id.
    pending: BTreeMap<(Hadd, String, u32), (String, Data)>,
    /// Whether this process has the network's key: without it, the page warns that anyone
    /// on the broker can take the primary.
    keyed: bool,
    /// The leases, as the primaries published them, with the granting epoch.
    leases: BTreeMap<Hadd, (u64, HeldLease)>,
    /// Known nodes a process said another process beats on too, and when (Unix ms).
    shared: BTreeMap<Hadd, u64>,
}

/// Sets awaiting their answer, at most (the oldest is forgotten first).
const PENDING_SETS: usize = 256;

impl Default for WebModel {
    fn default() -> Self {
        // Primaries beat every second by default: a jump is believed when repeated 0.5 s on.
        WebModel {
            view: NetworkView::new(Duration::from_millis(500)),
            pending: BTreeMap::new(),
            keyed: false,
            leases: BTreeMap::new(),
            shared: BTreeMap::new(),
        }
    }
}

impl WebModel {
    /// The model of a process with the network's key (`keyed`) or without.
    pub fn new(keyed: bool) -> Self {
        WebModel {
            keyed,
            ..WebModel::default()
        }
    }
}

fn millis(at: Option<Duration>) -> u64 {
    at.map_or(0, |at| u64::try_from(at.as_millis()).unwrap_or(u64::MAX))
}

fn value_json(hadd: Hadd, genre: Genre, value: &ValueDescriptor) -> Data {
    let mut tree = value.to_tree();
    if let Data::Object(map) = &mut tree {
        map.insert("hadd".into(), Data::from(hadd.to_string()));
        map.insert("genre".into(), Data::from(genre.segment()));
        map.remove("reply_hadd");
    }
    tree
}

impl WebModel {
    /// The primary and its epoch.
    pub fn primary(&self) -> Option<(Hadd, u64)> {
        self.view.primary()
    }

    /// The command class a set of this value must carry (the original's nodes drop any other).
    pub fn request_class(&self, hadd: Hadd, genre: Genre, uuid: &str, index: u32) -> CommandClass {
        let known = self.view.map().value(hadd, genre, uuid, index);
        CommandClass::for_request(genre, known.map(|value| value.cmd_class))
    }

    /// How many values are known.
    pub fn value_count(&self) -> usize {
        self.values().count()
    }

    /// Whether a controller is known (its nodes answered a discovery).
    pub fn knows_controller(&self, ctrl: u16) -> bool {
        self.view.knows_controller(ctrl)
    }

    fn values(&self) -> impl Iterator<Item = (Hadd, Genre, &ValueDescriptor)> {
        self.view
            .map()
            .all_values()
            .filter(|(_, _, value)| value.uuid != CANDIDACY_UUID)
    }

    fn primary_json(&self) -> Data {
        match self.view.primary() {
            Some((hadd, epoch)) => json!({"hadd": hadd.to_string(), "epoch": epoch}),
            None => Data::Null,
        }
    }

    fn controller_json(&self, hadd: Hadd) -> Option<Data> {
        let status = self.view.controllers().get(&hadd)?;
        let candidacy = &status.candidacy;
        let primary = self.view.primary();
        let (standing, epoch) = match primary {
            Some((primary, epoch)) if primary == hadd => ("primary", epoch),
            Some(_) => ("secondary", candidacy.epoch),
            None => (candidacy.standing(), candidacy.epoch),
        };
        Some(json!({
            "hadd": hadd.to_string(),
            "role": candidacy.rank.map_or("?", |rank| rank.role.as_str()),
            "priority": candidacy.rank.map_or(0, |rank| rank.priority),
            "epoch": epoch,
            "standing": standing,
            "seen_ms": millis(Some(status.heard)),
        }))
    }

    fn node_json(&self, hadd: Hadd) -> Data {
        let info = self.view.map().node(hadd);
        let status = self.view.nodes().get(&hadd).copied().unwrap_or_default();
        json!({
            "hadd": hadd.to_string(),
            "name": info.map(|i| i.name.clone()),
            "location": info.map(|i| i.location.clone()),
            "oid": info.map(|i| i.oid.clone()),
            "product": info.map(|i| i.product_name.clone()),
            "state": status.state.map(|s| s.as_str()),
            "by": status.told_by.map(|h| h.to_string()),
            "seen_ms": millis(status.heard),
            "shared_ms": self.shared.get(&hadd),
        })
    }

    /// Everything, for a page that connects.
    pub fn snapshot(&self) -> Data {
        let mut nodes: Vec<Hadd> = self.view.nodes().keys().copied().collect();
        nodes.extend(self.view.map().nodes().map(|info| info.hadd));
        nodes.sort();
        nodes.dedup();
        json!({
            "type": "snapshot",
            "keyed": self.keyed,
            "primary": self.primary_json(),
            "controllers": self.view.controllers().keys().filter_map(|h| self.controller_json(*h)).collect::<Vec<_>>(),
            "nodes": nodes.into_iter().map(|h| self.node_json(h)).collect::<Vec<_>>(),
            "values": self.values().map(|(h, g, v)| value_json(h, g, v)).collect::<Vec<_>>(),
            "leases": self.leases.iter().map(|(h, (epoch, lease))| lease.listing(*h, *epoch)).collect::<Vec<_>>(),
            "shared_shown_for_ms": SHARED_SHOWN_FOR.as_millis() as u64,
        })
    }

    /// A set was sent from a page: its answer may come on the value's topic only.
    pub fn set_sent(&mut self, hadd: Hadd, uuid: &str, index: u32, request_id: &str, data: Data) {
        if self.pending.len() >= PENDING_SETS {
            self.pending.pop_first();
        }
        self.pending.insert(
            (hadd, uuid.to_owned(), index),
            (request_id.to_owned(), data),
        );
    }

    /// The answers, as the original gives them, to sets sent from a page: the value on its
    /// topic with the data set.
    fn answers_on_value_topic(&mut self, topic: &Topic, message: &Message) -> Vec<Data> {
        let (Topic::Value { hadd, uuid, .. }, Message::Value(publication)) = (topic, message)
        else {
            return Vec::new();
        };
        let mut events = Vec::new();
        for value in publication.instances() {
            let key = (*hadd, uuid.clone(), value.index);
            if self
                .pending
                .get(&key)
                .is_some_and(|(_, data)| *data == value.data)
            {
                if let Some((request_id, _)) = self.pending.remove(&key) {
                    events.push(json!({
                        "type": "reply", "request_id": request_id, "status": 200, "error": null,
                        "hadd": hadd.to_string(), "uuid": uuid, "index": value.index,
                    }));
                }
            }
        }
        events
    }

    /// A lease record: the lease kept (at most [`MAX_LEASES`]) or dropped.
    fn lease_changed(&mut self, hadd: Hadd, epoch: u64, held: Option<HeldLease>) -> Option<Data> {
        match held {
            Some(lease) => {
                if !self.leases.contains_key(&hadd) && self.leases.len() >= MAX_LEASES {
                    return None;
                }
                let event = json!({"type": "lease", "lease": lease.listing(hadd, epoch)});
                self.leases.insert(hadd, (epoch, lease));
                Some(event)
            }
            None => self
                .leases
                .remove(&hadd)
                .map(|_| json!({"type": "lease", "removed": hadd.to_string()})),
        }
    }

    /// Takes in one observed message, at `now_ms` (Unix ms); the events for open pages.
    pub fn apply(&mut self, topic: &Topic, message: &Message, now_ms: u64) -> Vec<Data> {
        let now = Duration::from_millis(now_ms);
        let mut events = Vec::new();
        for change in self.view.apply(topic, message, now) {
            match change {
                Change::Primary { .. } | Change::PrimaryGone { .. } => {
                    let mut primary = self.primary_json();
                    if let Data::Object(map) = &mut primary {
                        map.insert("type".into(), Data::from("primary"));
                    } else {
                        primary = json!({"type": "primary", "hadd": null});
                    }
                    events.push(primary);
                    // Every controller's standing follows from who is primary.
                    for hadd in self.view.controllers().keys() {
                        if let Some(controller) = self.controller_json(*hadd) {
                            events.push(json!({"type": "controller", "controller": controller}));
                        }
                    }
                }
                Change::Controller(hadd) => {
                    if let Some(controller) = self.controller_json(hadd) {
                        events.push(json!({"type": "controller", "controller": controller}));
                    }
                }
                Change::Node(hadd) => {
                    events.push(json!({"type": "node", "node": self.node_json(hadd)}));
                }
                Change::Value(MapChange::Value {
                    hadd,
                    genre,
                    uuid,
                    index,
                }) if uuid != CANDIDACY_UUID => {
                    if let Some(value) = self.view.map().value(hadd, genre, &uuid, index) {
                        let value = value_json(hadd, genre, value);
                        events.push(json!({"type": "value", "value": value}));
                    }
                }
                Change::Value(_) | Change::Refused(_) => {}
            }
        }
        events.extend(self.answers_on_value_topic(topic, message));
        if let (
            Topic::Value {
                genre: Genre::System,
                hadd,
                uuid,
            },
            Message::Value(_),
        ) = (topic, message)
        {
            if uuid == SHARED_ADDRESS && self.view.nodes().contains_key(hadd) {
                self.shared.insert(*hadd, now_ms);
                events.push(json!({"type": "node", "node": self.node_json(*hadd)}));
            }
        }
        if let (Topic::LeaseRecord(hadd), Message::LeaseRecord(record)) = (topic, message) {
            events.extend(self.lease_changed(*hadd, record.epoch, record.held.clone()));
        }
        if let (Topic::NodeReply(_), Message::ValueReply(reply)) = (topic, message) {
            if let Some(hadd) = reply.value.hadd {
                self.pending
                    .remove(&(hadd, reply.value.uuid.clone(), reply.value.index));
            }
            events.push(json!({
                "type": "reply",
                "request_id": reply.request_id,
                "status": reply.status().0,
                "error": reply.error,
                "hadd": reply.value.hadd.map(|h| h.to_string()),
                "uuid": reply.value.uuid,
                "index": reply.value.index,
            }));
        }
        events
    }
}

#[cfg(test)]
mod tests;
