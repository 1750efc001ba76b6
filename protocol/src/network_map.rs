//! The network map a network controller keeps: every node and its values by genre, uuid and
//! instance, merged from node info, value publications, discovery and resolv replies.
//!
//! A node's values are what the node described (discovery and resolv replies, its own
//! answers), up to a number per node: a publication on `/values/...` updates a described value
//! and adds none, so that made-up values published by the thousand cost nothing but a lookup.
//!
//! Fixes of the original (§9 items 7 and 8): values are merged whatever the caller's state (the
//! original dropped them during failover), a single-instance publication updates its instance
//! without dropping the others, and removing a node or clearing the map clears every genre.

use std::collections::BTreeMap;

use crate::fields::Data;
use crate::hadd::Hadd;
use crate::message::Message;
use crate::model::{Genre, InfoKind};
use crate::node::{builtin, NodeInfo};
use crate::reply::{DiscoveryData, DiscoveryReply};
use crate::topic::Topic;
use crate::value::{data_as_f64, ValueDescriptor, ValueInstances};

/// Entries per resolv reply, as the original chunks them (small messages for small devices).
pub const RESOLV_CHUNK: usize = 10;

/// What a merge changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapChange {
    /// A node's info.
    Node(Hadd),
    /// A value was not kept: published but never described by its node, or beyond the
    /// node's number of values.
    Dropped(Hadd),
    /// One instance of a value.
    Value {
        /// The node.
        hadd: Hadd,
        /// The genre it is published under.
        genre: Genre,
        /// The value.
        uuid: String,
        /// The instance.
        index: u32,
    },
}

/// Values of one node: by genre, then uuid.
pub type NodeValues = BTreeMap<Genre, BTreeMap<String, ValueInstances>>;

/// The map.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkMap {
    nodes: BTreeMap<Hadd, NodeInfo>,
    values: BTreeMap<Hadd, NodeValues>,
    max_values_per_node: usize,
}

impl Default for NetworkMap {
    fn default() -> Self {
        NetworkMap {
            nodes: BTreeMap::new(),
            values: BTreeMap::new(),
            max_values_per_node: crate::limits::DEFAULT_MAX_VALUES_PER_NODE,
        }
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Described: a discovery or resolv reply, an answer.
    Described,
    /// Published on `/values/...`: only updates what was described.
    Published,
}

impl NetworkMap {
    /// An empty map.
    pub fn new() -> Self {
        NetworkMap::default()
    }

    /// An empty map keeping at most `max` values (instances) per node.
    pub fn with_max_values_per_node(max: usize) -> Self {
        NetworkMap {
            max_values_per_node: max,
            ..NetworkMap::default()
        }
    }

    /// The values (instances) kept of `hadd`.
    pub fn value_count(&self, hadd: Hadd) -> usize {
        self.values.get(&hadd).map_or(0, |genres| {
            genres
                .values()
                .flat_map(BTreeMap::values)
                .map(BTreeMap::len)
                .sum()
        })
    }

    /// Adds or replaces a node's info; true when the map changed.
    pub fn merge_node(&mut self, info: NodeInfo) -> bool {
        let changed = self.nodes.get(&info.hadd) != Some(&info);
        self.nodes.insert(info.hadd, info);
        changed
    }

    /// Adds or updates one instance of a value, as described by its node; true when the map
    /// changed. A terse publication (no label: the data only) updates the data and keeps what
    /// discovery said.
    pub fn merge_value(&mut self, hadd: Hadd, genre: Genre, value: ValueDescriptor) -> bool {
        self.merge_from(hadd, genre, value, Source::Described) == Some(true)
    }

    /// Whether `hadd` has described this value (some instance of it).
    fn described(&self, hadd: Hadd, genre: Genre, uuid: &str) -> bool {
        self.values
            .get(&hadd)
            .and_then(|genres| genres.get(&genre))
            .is_some_and(|uuids| uuids.contains_key(uuid))
    }

    /// Merges one instance from `source`: whether the map changed, `None` when it was dropped
    /// (a value its node never described, or one beyond its number of values).
    fn merge_from(
        &mut self,
        hadd: Hadd,
        genre: Genre,
        value: ValueDescriptor,
        source: Source,
    ) -> Option<bool> {
        self.sync_period(hadd, genre, &value);
        if source == Source::Published && !self.described(hadd, genre, &value.uuid) {
            return None;
        }
        let new_instance = self
            .values
            .get(&hadd)
            .and_then(|genres| genres.get(&genre))
            .and_then(|uuids| uuids.get(&value.uuid))
            .is_none_or(|instances| !instances.contains_key(&value.index));
        if new_instance && self.value_count(hadd) >= self.max_values_per_node {
            return None;
        }
        let instances = self
            .values
            .entry(hadd)
            .or_default()
            .entry(genre)
            .or_default()
            .entry(value.uuid.clone())
            .or_default();
        let merged = match instances.get(&value.index) {
            Some(known) if value.label.is_none() && known.label.is_some() => ValueDescriptor {
                data: value.data,
                ..known.clone()
            },
            _ => value,
        };
        let changed = instances.get(&merged.index) != Some(&merged);
        instances.insert(merged.index, merged);
        Some(changed)
    }

    /// A node's period told by its built-in `heartbeat` value, described or not: its node info
    /// tells the same period, keep them one.
    fn sync_period(&mut self, hadd: Hadd, genre: Genre, value: &ValueDescriptor) {
        if let (Genre::System, builtin::HEARTBEAT, 0) = (genre, value.uuid.as_str(), value.index) {
            let seconds = data_as_f64(&value.data).filter(|s| s.is_finite() && *s > 0.0);
            if let (Some(node), Some(seconds)) = (self.nodes.get_mut(&hadd), seconds) {
                node.heartbeat = seconds;
            }
        }
    }

    /// Merges a discovery (or resolv) reply; what changed.
    pub fn merge_discovery(&mut self, reply: &DiscoveryReply) -> Vec<MapChange> {
        let mut changes = Vec::new();
        match &reply.data {
            DiscoveryData::Nodes(nodes) => {
                for node in nodes.values() {
                    if self.merge_node(node.clone()) {
                        changes.push(MapChange::Node(node.hadd));
                    }
                }
            }
            DiscoveryData::Values(values) => {
                let genre = reply.kind.genre().unwrap_or_default();
                for (hadd, by_uuid) in values {
                    for instance in by_uuid.values().flat_map(BTreeMap::values) {
                        self.merge_one(
                            *hadd,
                            genre,
                            instance.clone(),
                            Source::Described,
                            &mut changes,
                        );
                    }
                }
            }
        }
        changes
    }

    fn merge_one(
        &mut self,
        hadd: Hadd,
        genre: Genre,
        value: ValueDescriptor,
        source: Source,
        changes: &mut Vec<MapChange>,
    ) {
        let (uuid, index) = (value.uuid.clone(), value.index);
        match self.merge_from(hadd, genre, value, source) {
            Some(true) => changes.push(MapChange::Value {
                hadd,
                genre,
                uuid,
                index,
            }),
            Some(false) => {}
            None => changes.push(MapChange::Dropped(hadd)),
        }
    }

    /// Merges what a message on `topic` says about the network (value publications, discovery
    /// and resolv replies, successful value answers); what changed.
    pub fn apply(&mut self, topic: &Topic, message: &Message) -> Vec<MapChange> {
        let mut changes = Vec::new();
        match (topic, message) {
            (Topic::Value { genre, hadd, .. }, Message::Value(publication)) => {
                for value in publication.instances() {
                    self.merge_one(
                        *hadd,
                        *genre,
                        value.clone(),
                        Source::Published,
                        &mut changes,
                    );
                }
            }
            (_, Message::DiscoveryReply(reply)) => changes = self.merge_discovery(reply),
            (_, Message::ValueReply(reply)) if reply.status().is_success() => {
                if let Some(hadd) = reply.value.hadd {
                    let value = reply.value.clone();
                    self.merge_one(hadd, value.genre, value, Source::Described, &mut changes);
                }
            }
            _ => {}
        }
        changes
    }

    /// One instance.
    pub fn value(
        &self,
        hadd: Hadd,
        genre: Genre,
        uuid: &str,
        index: u32,
    ) -> Option<&ValueDescriptor> {
        self.values(hadd, genre)?.get(uuid)?.get(&index)
    }

    /// Every value of every node: address, genre, uuid, instance.
    pub fn all_values(&self) -> impl Iterator<Item = (Hadd, Genre, &ValueDescriptor)> {
        self.values.iter().flat_map(|(hadd, genres)| {
            genres.iter().flat_map(move |(genre, by_uuid)| {
                by_uuid
                    .values()
                    .flat_map(BTreeMap::values)
                    .map(move |value| (*hadd, *genre, value))
            })
        })
    }

    /// A node's info.
    pub fn node(&self, hadd: Hadd) -> Option<&NodeInfo> {
        self.nodes.get(&hadd)
    }

    /// Every node, by address.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values()
    }

    /// The values of a node in one genre.
    pub fn values(&self, hadd: Hadd, genre: Genre) -> Option<&BTreeMap<String, ValueInstances>> {
        self.values.get(&hadd).and_then(|genres| genres.get(&genre))
    }

    /// The data of one instance.
    pub fn data(&self, hadd: Hadd, genre: Genre, uuid: &str, index: u32) -> Option<&Data> {
        self.values(hadd, genre)?
            .get(uuid)?
            .get(&index)
            .map(|value| &value.data)
    }

    /// Forgets a node and all its values, in every genre.
    pub fn remove_node(&mut self, hadd: Hadd) {
        self.nodes.remove(&hadd);
        self.values.remove(&hadd);
    }

    /// Forgets everything, in every genre.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.values.clear();
    }

    /// The map as discovery replies of `kind` for `reply_hadd`, at most [`RESOLV_CHUNK`] nodes
    /// per message, as a primary answers a resolv request. Each reply carries `chunk` and
    /// `chunks` (our addition) so that the requester knows when it has everything; an empty map
    /// is one empty reply.
    pub fn discovery_replies(
        &self,
        kind: InfoKind,
        reply_hadd: Option<Hadd>,
    ) -> Vec<DiscoveryReply> {
        let chunks: Vec<DiscoveryData> = match kind.genre() {
            None => chunked(&self.nodes, |node| node.clone())
                .into_iter()
                .map(DiscoveryData::Nodes)
                .collect(),
            Some(genre) => {
                let per_node: BTreeMap<Hadd, BTreeMap<String, ValueInstances>> = self
                    .values
                    .iter()
                    .filter_map(|(hadd, genres)| {
                        genres.get(&genre).map(|values| (*hadd, values.clone()))
                    })
                    .collect();
                chunked(&per_node, Clone::clone)
                    .into_iter()
                    .map(DiscoveryData::Values)
                    .collect()
            }
        };
        let total = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(at, data)| {
                let mut reply = DiscoveryReply::new(kind, reply_hadd, data);
                reply.extra.insert("chunk".into(), Data::from(at + 1));
                reply.extra.insert("chunks".into(), Data::from(total));
                reply
            })
            .collect()
    }
}

/// Splits a map into maps of at most [`RESOLV_CHUNK`] entries (one empty map when empty).
fn chunked<V, W>(map: &BTreeMap<Hadd, V>, convert: impl Fn(&V) -> W) -> Vec<BTreeMap<Hadd, W>> {
    let entries: Vec<(Hadd, W)> = map
        .iter()
        .map(|(hadd, value)| (*hadd, convert(value)))
        .collect();
    if entries.is_empty() {
        return vec![BTreeMap::new()];
    }
    let mut chunks = Vec::new();
    let mut current = BTreeMap::new();
    for (hadd, value) in entries {
        current.insert(hadd, value);
        if current.len() == RESOLV_CHUNK {
            chunks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::command_class::CommandClass;
    use crate::value::ValuePublication;

    fn value(hadd: Hadd, uuid: &str, index: u32, data: f64) -> ValueDescriptor {
        ValueDescriptor {
            hadd: Some(hadd),
            index,
            data: Data::from(data),
            ..ValueDescriptor::new(uuid, Genre::Basic, CommandClass::SENSOR_MULTILEVEL)
        }
    }

    #[test]
    fn a_single_instance_publication_keeps_the_other_instances() {
        let hadd = Hadd::new(1048, 2);
        let mut map = NetworkMap::new();
        let topic = Topic::Value {
            genre: Genre::Basic,
            hadd,
            uuid: "load".into(),
        };
        for i in 0..3 {
            assert!(map.merge_value(hadd, Genre::Basic, value(hadd, "load", i, 0.1)));
        }
        let all =
            ValuePublication::Instances((0..3).map(|i| (i, value(hadd, "load", i, 0.5))).collect());
        assert_eq!(map.apply(&topic, &Message::Value(all)).len(), 3);
        let one = ValuePublication::Single(Box::new(value(hadd, "load", 1, 0.9)));
        assert_eq!(
            map.apply(&topic, &Message::Value(one.clone())),
            [MapChange::Value {
                hadd,
                genre: Genre::Basic,
                uuid: "load".into(),
                index: 1
            }]
        );
        assert!(
            map.apply(&topic, &Message::Value(one)).is_empty(),
            "no change the second time"
        );
        assert_eq!(
            map.data(hadd, Genre::Basic, "load", 1),
            Some(&Data::from(0.9))
        );
        assert_eq!(
            map.data(hadd, Genre::Basic, "load", 2),
            Some(&Data::from(0.5))
        );
    }

    #[test]
    fn discovery_replies_of_the_original_fill_the_map() {
        let mut map = NetworkMap::new();
        let line = r#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_systems", "reply_hadd": "0002/0000", "data": {"1048/0000": {"heartbeat": {"uuid": "heartbeat", "cmd_class": 112, "genre": 4, "type": 4, "index": 0, "data": 30.0}}}}"#;
        let topic = Topic::parse("/dhcp/resolv/reply/0002/0000").unwrap();
        let message = Message::decode(&topic, line.as_bytes(), Codec::Json).unwrap();
        assert!(!map.apply(&topic, &message).is_empty());
        assert_eq!(
            map.data(Hadd::new(1048, 0), Genre::System, "heartbeat", 0),
            Some(&Data::from(30.0))
        );
    }

    #[test]
    fn the_map_answers_in_chunks_that_rebuild_it() {
        let mut map = NetworkMap::new();
        for node in 0..25 {
            let hadd = Hadd::new(300, node);
            map.merge_node(NodeInfo::new(hadd, format!("node{node}")));
            map.merge_value(
                hadd,
                Genre::User,
                value(hadd, "temperature", 0, f64::from(node)),
            );
        }
        let replies = map.discovery_replies(InfoKind::Nodes, Some(Hadd::new(2, 0)));
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[2].extra["chunk"], Data::from(3));
        assert_eq!(replies[2].extra["chunks"], Data::from(3));
        let mut rebuilt = NetworkMap::new();
        for kind in [InfoKind::Nodes, InfoKind::Users] {
            for reply in map.discovery_replies(kind, None) {
                rebuilt.merge_discovery(&reply);
            }
        }
        assert_eq!(rebuilt, map);
        assert_eq!(
            NetworkMap::new()
                .discovery_replies(InfoKind::Users, None)
                .len(),
            1
        );
    }

    #[test]
    fn a_terse_publication_updates_the_data_and_keeps_the_description() {
        let hadd = Hadd::new(220, 1);
        let mut map = NetworkMap::new();
        let described = ValueDescriptor {
            label: Some("Temperature".into()),
            units: Some("°C".into()),
            ..value(hadd, "temperature", 0, 20.5)
        };
        map.merge_value(hadd, Genre::User, described);
        assert!(map.merge_value(hadd, Genre::User, value(hadd, "temperature", 0, 21.0)));
        let merged = map.value(hadd, Genre::User, "temperature", 0).unwrap();
        assert_eq!(merged.data, Data::from(21.0));
        assert_eq!(merged.units.as_deref(), Some("°C"));
    }

    #[test]
    fn removing_a_node_clears_every_genre() {
        let hadd = Hadd::new(300, 1);
        let mut map = NetworkMap::new();
        map.merge_node(NodeInfo::new(hadd, "n"));
        for genre in Genre::ALL {
            map.merge_value(hadd, genre, value(hadd, "x", 0, 1.0));
        }
        map.remove_node(hadd);
        assert!(map.node(hadd).is_none());
        assert!(Genre::ALL
            .iter()
            .all(|genre| map.values(hadd, *genre).is_none()));
    }

    /// Issue 21's finding 3: 20,000 made-up values published on `/values/user/...` stalled the
    /// primary and grew its memory by 100 MiB. A value the node never described is dropped.
    #[test]
    fn values_a_node_never_described_are_dropped_not_kept() {
        let hadd = Hadd::new(220, 1);
        let mut map = NetworkMap::new();
        assert!(map.merge_value(hadd, Genre::User, value(hadd, "temperature", 0, 20.0)));
        for i in 0..20_000 {
            let uuid = format!("fake{i}");
            let topic = Topic::Value {
                genre: Genre::User,
                hadd,
                uuid: uuid.clone(),
            };
            let made_up = ValuePublication::Single(Box::new(value(hadd, &uuid, 0, 1.0)));
            assert_eq!(
                map.apply(&topic, &Message::Value(made_up)),
                [MapChange::Dropped(hadd)]
            );
        }
        assert_eq!(map.value_count(hadd), 1);
        // A new instance of a described value is kept.
        let topic = Topic::Value {
            genre: Genre::User,
            hadd,
            uuid: "temperature".into(),
        };
        let second = ValuePublication::Single(Box::new(value(hadd, "temperature", 1, 21.0)));
        assert_eq!(map.apply(&topic, &Message::Value(second)).len(), 1);
        assert_eq!(map.value_count(hadd), 2);
        // And a node's period told by its heartbeat value reaches its info, described or not.
        map.merge_node(NodeInfo::new(hadd, "sensor"));
        let beat = Topic::Value {
            genre: Genre::System,
            hadd,
            uuid: builtin::HEARTBEAT.into(),
        };
        let mut period = value(hadd, builtin::HEARTBEAT, 0, 45.0);
        period.genre = Genre::System;
        map.apply(
            &beat,
            &Message::Value(ValuePublication::Single(Box::new(period))),
        );
        assert_eq!(map.node(hadd).map(|node| node.heartbeat), Some(45.0));
    }

    #[test]
    fn a_node_describes_at_most_its_number_of_values() {
        let hadd = Hadd::new(220, 1);
        let mut map = NetworkMap::with_max_values_per_node(256);
        let kept = (0..300)
            .filter(|i| map.merge_value(hadd, Genre::User, value(hadd, &format!("v{i}"), 0, 1.0)))
            .count();
        assert_eq!((kept, map.value_count(hadd)), (256, 256));
        // What is kept still updates; another node has its own number.
        assert!(map.merge_value(hadd, Genre::User, value(hadd, "v0", 0, 2.0)));
        let other = Hadd::new(220, 2);
        assert!(map.merge_value(other, Genre::User, value(other, "v0", 0, 1.0)));
    }
}
