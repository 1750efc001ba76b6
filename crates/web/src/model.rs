//! What the web manager knows of the network, from the traffic it observes, and the updates it
//! pushes to open pages. Pure: messages in, JSON events out, no I/O.
//!
//! Events, as JSON objects with a `type`:
//! - `snapshot`: `primary`, `controllers`, `nodes`, `values` (sent when a page connects);
//! - `controller`, `node`, `value`: one entry changed (the same shape as in the snapshot);
//! - `primary`: the primary network controller and its epoch;
//! - `reply`: the answer to a set made from a page (`request_id`, `status`, `error`, `value`).
//!
//! Memory is bounded by the network's size: a value's update replaces its entry.

use std::collections::BTreeMap;

use janitoo_protocol::{
    Data, DiscoveryData, Hadd, HaddTarget, Message, NodeInfo, NodeState, Topic, ValueDescriptor,
    ValuePublication,
};
use serde_json::json;

/// The system value by which a network controller announces its candidacy.
const CANDIDACY_UUID: &str = "network_controller";

#[derive(Debug, Clone, Default)]
struct ControllerEntry {
    role: String,
    priority: u64,
    epoch: u64,
    standing: String,
    seen_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct NodeEntry {
    info: Option<NodeInfo>,
    state: Option<NodeState>,
    by: Option<Hadd>,
    seen_ms: u64,
}

/// The network as the web manager sees it.
#[derive(Debug, Default)]
pub struct WebModel {
    primary: Option<(Hadd, u64)>,
    controllers: BTreeMap<Hadd, ControllerEntry>,
    nodes: BTreeMap<Hadd, NodeEntry>,
    values: BTreeMap<(Hadd, String, u32), ValueDescriptor>,
}

fn controller_json(hadd: Hadd, entry: &ControllerEntry) -> Data {
    json!({
        "hadd": hadd.to_string(),
        "role": entry.role,
        "priority": entry.priority,
        "epoch": entry.epoch,
        "standing": entry.standing,
        "seen_ms": entry.seen_ms,
    })
}

fn node_json(hadd: Hadd, entry: &NodeEntry) -> Data {
    let info = entry.info.as_ref();
    json!({
        "hadd": hadd.to_string(),
        "name": info.map(|i| i.name.clone()),
        "location": info.map(|i| i.location.clone()),
        "oid": info.map(|i| i.oid.clone()),
        "product": info.map(|i| i.product_name.clone()),
        "state": entry.state.map(|s| s.as_str()),
        "by": entry.by.map(|h| h.to_string()),
        "seen_ms": entry.seen_ms,
    })
}

fn value_json(hadd: Hadd, value: &ValueDescriptor) -> Data {
    let mut tree = value.to_tree();
    if let Data::Object(map) = &mut tree {
        map.insert("hadd".into(), Data::from(hadd.to_string()));
        map.insert("genre".into(), Data::from(value.genre.segment()));
        map.remove("reply_hadd");
    }
    tree
}

impl WebModel {
    /// The primary and its epoch.
    pub fn primary(&self) -> Option<(Hadd, u64)> {
        self.primary
    }

    /// How many values are known.
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// Whether a controller is known (its nodes answered a discovery or it beats).
    pub fn knows_controller(&self, ctrl: u16) -> bool {
        self.nodes
            .keys()
            .any(|hadd| hadd.ctrl == ctrl && self.nodes[hadd].info.is_some())
    }

    /// Everything, for a page that connects.
    pub fn snapshot(&self) -> Data {
        json!({
            "type": "snapshot",
            "primary": self.primary.map(|(hadd, epoch)| json!({"hadd": hadd.to_string(), "epoch": epoch})),
            "controllers": self.controllers.iter().map(|(h, e)| controller_json(*h, e)).collect::<Vec<_>>(),
            "nodes": self.nodes.iter().map(|(h, e)| node_json(*h, e)).collect::<Vec<_>>(),
            "values": self.values.iter().map(|((h, _, _), v)| value_json(*h, v)).collect::<Vec<_>>(),
        })
    }

    fn node_changed(&mut self, hadd: Hadd, change: impl FnOnce(&mut NodeEntry)) -> Data {
        let entry = self.nodes.entry(hadd).or_default();
        change(entry);
        json!({"type": "node", "node": node_json(hadd, entry)})
    }

    fn value_changed(&mut self, hadd: Hadd, value: &ValueDescriptor) -> Data {
        let key = (hadd, value.uuid.clone(), value.index);
        let merged = match self.values.get(&key) {
            // A publication may be terse (the data only): keep what discovery told us.
            Some(known) if value.label.is_none() => ValueDescriptor {
                data: value.data.clone(),
                ..known.clone()
            },
            _ => value.clone(),
        };
        let event = json!({"type": "value", "value": value_json(hadd, &merged)});
        self.values.insert(key, merged);
        event
    }

    /// Takes in one observed message, at `now_ms` (Unix ms); the events for open pages.
    pub fn apply(&mut self, topic: &Topic, message: &Message, now_ms: u64) -> Vec<Data> {
        let mut events = Vec::new();
        match (topic, message) {
            (Topic::ResolvHeartbeat, Message::ResolvHeartbeat(beat)) => {
                let epoch = beat.epoch.unwrap_or(0);
                if self
                    .primary
                    .is_none_or(|(hadd, old)| epoch > old || hadd == beat.hadd)
                {
                    if self.primary != Some((beat.hadd, epoch)) {
                        events.push(json!({"type": "primary", "hadd": beat.hadd.to_string(), "epoch": epoch}));
                    }
                    self.primary = Some((beat.hadd, epoch));
                    // The resolv heartbeat is fresher than the candidacies: one primary.
                    for (hadd, entry) in &mut self.controllers {
                        let standing = if *hadd == beat.hadd {
                            "primary"
                        } else {
                            "secondary"
                        };
                        let changed = entry.standing != standing
                            || (*hadd == beat.hadd && entry.epoch != epoch);
                        if changed {
                            entry.standing = standing.to_owned();
                            if *hadd == beat.hadd {
                                entry.epoch = epoch;
                            }
                            events.push(json!({"type": "controller", "controller": controller_json(*hadd, entry)}));
                        }
                    }
                }
            }
            (Topic::Heartbeat(_), Message::Heartbeat(beat))
            | (Topic::HeartbeatOnBehalf, Message::HeartbeatOnBehalf(beat)) => {
                let targets: Vec<Hadd> = match beat.target {
                    HaddTarget::Node(hadd) => vec![hadd],
                    HaddTarget::AllNodes { ctrl } => self
                        .nodes
                        .keys()
                        .copied()
                        .filter(|hadd| hadd.ctrl == ctrl)
                        .collect(),
                };
                for hadd in targets {
                    let (state, by) = (beat.state, beat.observer);
                    let on_behalf = matches!(topic, Topic::HeartbeatOnBehalf);
                    events.push(self.node_changed(hadd, |entry| {
                        entry.state = Some(state);
                        entry.by = by;
                        if !on_behalf {
                            entry.seen_ms = now_ms;
                        }
                    }));
                }
            }
            (Topic::Value { hadd, uuid, .. }, Message::Value(ValuePublication::Single(value)))
                if uuid == CANDIDACY_UUID =>
            {
                let extra = |key: &str| value.extra.get(key).cloned().unwrap_or(Data::Null);
                let entry = ControllerEntry {
                    role: extra("role").as_str().unwrap_or("?").to_owned(),
                    priority: extra("priority").as_u64().unwrap_or(0),
                    epoch: extra("epoch").as_u64().unwrap_or(0),
                    standing: value.data.as_str().unwrap_or("?").to_owned(),
                    seen_ms: now_ms,
                };
                events.push(
                    json!({"type": "controller", "controller": controller_json(*hadd, &entry)}),
                );
                self.controllers.insert(*hadd, entry);
            }
            (Topic::Value { hadd, .. }, Message::Value(publication)) => {
                for value in publication.instances() {
                    events.push(self.value_changed(*hadd, value));
                }
            }
            (_, Message::DiscoveryReply(reply)) => match &reply.data {
                DiscoveryData::Nodes(nodes) => {
                    for (hadd, info) in nodes {
                        let info = info.clone();
                        events.push(self.node_changed(*hadd, |entry| {
                            if entry.state.is_none() {
                                entry.state = info.state;
                            }
                            entry.info = Some(info);
                        }));
                    }
                }
                DiscoveryData::Values(by_node) => {
                    for (hadd, values) in by_node {
                        for instances in values.values() {
                            for value in instances.values() {
                                events.push(self.value_changed(*hadd, value));
                            }
                        }
                    }
                }
            },
            (Topic::NodeReply(_), Message::ValueReply(reply)) => {
                let hadd = reply.value.hadd;
                if reply.status().is_success() {
                    if let Some(hadd) = hadd {
                        events.push(self.value_changed(hadd, &reply.value));
                    }
                }
                events.push(json!({
                    "type": "reply",
                    "request_id": reply.request_id,
                    "status": reply.status().0,
                    "error": reply.error,
                    "hadd": hadd.map(|h| h.to_string()),
                    "uuid": reply.value.uuid,
                    "index": reply.value.index,
                }));
            }
            _ => {}
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use janitoo_protocol::{Codec, Genre};

    use super::*;

    fn feed(model: &mut WebModel, topic: &str, payload: &str) -> Vec<Data> {
        let (topic, message) = Message::decode_on(topic, payload.as_bytes(), Codec::Json).unwrap();
        model.apply(&topic, &message, 1_000)
    }

    #[test]
    fn values_replace_their_entry_and_keep_what_discovery_said() {
        let mut model = WebModel::default();
        feed(
            &mut model,
            "/broadcast/reply/9997/0001",
            r#"{"uuid":"request_info_users","cmd_class":20480,"genre":4,"reply_hadd":"9997/0001",
                "data":{"0220/0001":{"temperature":{"0":{"uuid":"temperature","index":0,"genre":2,
                "label":"Temperature","units":"°C","data":20.5,"cmd_class":49,"hadd":"0220/0001"}}}}}"#,
        );
        assert_eq!(model.value_count(), 1, "{}", model.snapshot());
        for data in [21.0, 21.5, 22.0] {
            let events = feed(
                &mut model,
                "/values/user/0220/0001/temperature",
                &format!(
                    r#"{{"uuid":"temperature","index":0,"genre":2,"data":{data},"hadd":"0220/0001"}}"#
                ),
            );
            assert_eq!(events.len(), 1);
            assert_eq!(events[0]["value"]["data"], data);
            assert_eq!(events[0]["value"]["units"], "°C", "kept from discovery");
            assert_eq!(events[0]["value"]["genre"], "user");
        }
        assert_eq!(model.value_count(), 1);
        let snapshot = model.snapshot();
        assert_eq!(snapshot["values"][0]["data"], 22.0);
        assert_eq!(snapshot["values"][0]["hadd"], "0220/0001");
        let _ = Genre::User;
    }

    #[test]
    fn heartbeats_set_node_states_and_the_resolv_heartbeat_the_primary() {
        let mut model = WebModel::default();
        let events = feed(&mut model, "/dhcp/heartbeat/0220/0001", "ONLINE");
        assert_eq!(events[0]["node"]["state"], "ONLINE");
        feed(&mut model, "/dhcp/heartbeat/0220/0000", "ONLINE");
        // A controller's OFFLINE for all its nodes.
        let events = feed(
            &mut model,
            "/dhcp/heartbeat/",
            r#"{"add_ctrl":220,"add_node":-1,"state":"OFFLINE","observer":"0001/0000"}"#,
        );
        assert_eq!(events.len(), 2);
        let events = feed(
            &mut model,
            "/dhcp/resolv/heartbeat",
            r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
        );
        assert_eq!(events[0]["type"], "primary");
        assert_eq!(model.primary(), Some((Hadd::new(1, 0), 65537)));
        // An older epoch does not take it back.
        feed(
            &mut model,
            "/dhcp/resolv/heartbeat",
            r#"{"add_ctrl":2,"add_node":0,"state":"ONLINE","epoch":2}"#,
        );
        assert_eq!(model.primary(), Some((Hadd::new(1, 0), 65537)));
    }

    #[test]
    fn a_reply_is_an_event_for_the_page_that_asked() {
        let mut model = WebModel::default();
        let events = feed(
            &mut model,
            "/nodes/9997/0001/reply",
            r#"{"uuid":"switch","index":0,"genre":2,"data":"on","hadd":"0220/0002",
                "status":200,"request_id":"web-1","cmd_class":37}"#,
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[1]["type"], "reply");
        assert_eq!(events[1]["request_id"], "web-1");
        assert_eq!(events[1]["status"], 200);
        assert_eq!(events[0]["value"]["data"], "on");
    }
}
