//! Proptest strategies for every message of the protocol.
#![allow(dead_code)]

use std::collections::BTreeMap;

use janitoo_protocol::{
    Capability, CommandClass, Data, DiscoveryData, DiscoveryReply, Genre, Hadd, HaddTarget,
    Heartbeat, InfoKind, LeasePart, LeaseReply, LeaseRequest, Message, NodeInfo, NodeState,
    Operation, Request, ResolvHeartbeat, Status, Timestamp, Topic, ValueDescriptor, ValueInstances,
    ValuePublication, ValueReply, ValueType,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

pub fn hadd() -> impl Strategy<Value = Hadd> {
    (0u16..=9999, 0u16..=9999).prop_map(|(ctrl, node)| Hadd::new(ctrl, node))
}

pub fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

pub fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

/// Finite floats, whole or not.
pub fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-100_000i64..100_000).prop_map(|whole| whole as f64),
        -1.0e9f64..1.0e9,
    ]
}

/// Any JSON datum, nested a little.
pub fn data() -> impl Strategy<Value = Data> {
    let leaf = prop_oneof![
        Just(Data::Null),
        any::<bool>().prop_map(Data::from),
        any::<i64>().prop_map(Data::from),
        float().prop_map(Data::from),
        text().prop_map(Data::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Data::Array),
            btree_map(text(), inner, 0..4).prop_map(|map| Data::Object(map.into_iter().collect())),
        ]
    })
}

/// Fields no message knows, so they land in `extra`.
pub fn extra() -> impl Strategy<Value = BTreeMap<String, Data>> {
    btree_map("x_[a-z]{1,6}", data(), 0..3)
}

pub fn genre() -> impl Strategy<Value = Genre> {
    select(Genre::ALL.to_vec())
}

pub fn state() -> impl Strategy<Value = NodeState> {
    select(NodeState::ALL.to_vec())
}

pub fn info_kind() -> impl Strategy<Value = InfoKind> {
    select(InfoKind::ALL.to_vec())
}

pub fn value_descriptor() -> impl Strategy<Value = ValueDescriptor> {
    let identity = (
        name(),
        option::of(name()),
        option::of(hadd()),
        any::<u32>(),
        genre(),
        option::of(select(ValueType::ALL.to_vec())),
        any::<u16>(),
    );
    let texts = (
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(name()),
        option::of(name()),
        option::of(hadd()),
    );
    let numbers = (
        data(),
        option::of(float()),
        option::of(float()),
        option::of(vec(text(), 0..4)),
        (
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
        ),
        option::of(float()),
        data(),
        extra(),
    );
    (identity, texts, numbers).prop_map(
        |(
            (uuid, node_uuid, hadd, index, genre, value_type, cmd_class),
            (label, help, units, voice_uuid, entry_name, reply_hadd),
            (
                default,
                min,
                max,
                list_items,
                (is_readonly, is_writeonly, is_polled),
                poll_delay,
                data,
                extra,
            ),
        )| ValueDescriptor {
            uuid,
            node_uuid,
            hadd,
            index,
            genre,
            value_type,
            cmd_class: CommandClass(cmd_class),
            label,
            help,
            units,
            default,
            min,
            max,
            list_items,
            is_readonly,
            is_writeonly,
            is_polled,
            poll_delay,
            voice_uuid,
            reply_hadd,
            data,
            entry_name,
            extra,
        },
    )
}

/// Instances of one value, each descriptor's index equal to its key.
pub fn instances() -> impl Strategy<Value = ValueInstances> {
    btree_map(0u32..8, value_descriptor(), 1..4).prop_map(|map| {
        map.into_iter()
            .map(|(index, mut value)| {
                value.index = index;
                (index, value)
            })
            .collect()
    })
}

pub fn node_info() -> impl Strategy<Value = NodeInfo> {
    (
        (option::of(name()), hadd(), name(), text(), text()),
        (text(), text(), text()),
        (vec(any::<u8>(), 0..3), vec(any::<u16>(), 0..4)),
        (float(), float(), option::of(state()), extra()),
    )
        .prop_map(
            |(
                (uuid, hadd, oid, name, location),
                (product_name, product_type, product_manufacturer),
                (capabilities, cmd_classes),
                (heartbeat, config_timeout, state, extra),
            )| NodeInfo {
                uuid,
                hadd,
                oid,
                name,
                location,
                product_name,
                product_type,
                product_manufacturer,
                capabilities: capabilities.into_iter().map(Capability).collect(),
                cmd_classes: cmd_classes.into_iter().map(CommandClass).collect(),
                heartbeat,
                config_timeout,
                state,
                extra,
            },
        )
}

pub fn request() -> impl Strategy<Value = Request> {
    (
        select(vec![Operation::Get, Operation::Set, Operation::Info]),
        info_kind(),
        name(),
        (
            any::<u16>(),
            genre(),
            option::of(hadd()),
            option::of(hadd()),
        ),
        (
            option::of(any::<u32>()),
            data(),
            option::of(text()),
            extra(),
        ),
    )
        .prop_map(
            |(
                op,
                kind,
                uuid,
                (cmd_class, genre, reply_hadd, hadd),
                (index, data, request_id, extra),
            )| {
                let info = op == Operation::Info;
                Request {
                    op,
                    uuid: if info { kind.uuid().to_owned() } else { uuid },
                    cmd_class: CommandClass(cmd_class),
                    genre,
                    reply_hadd,
                    hadd,
                    index,
                    data: if info { Data::Null } else { data },
                    request_id,
                    extra,
                }
            },
        )
}

pub fn status() -> impl Strategy<Value = Status> {
    (100u16..600).prop_map(Status)
}

pub fn value_reply() -> impl Strategy<Value = ValueReply> {
    (
        value_descriptor(),
        option::of(status()),
        option::of(text()),
        option::of(text()),
    )
        .prop_map(|(value, status, error, request_id)| ValueReply {
            value,
            status,
            error,
            request_id,
        })
}

pub fn discovery_reply() -> impl Strategy<Value = DiscoveryReply> {
    let nodes = vec(node_info(), 0..4)
        .prop_map(|nodes| DiscoveryData::Nodes(nodes.into_iter().map(|n| (n.hadd, n)).collect()));
    let values = btree_map(hadd(), btree_map(name(), instances(), 0..3), 0..3).prop_map(|values| {
        let values = values
            .into_iter()
            .map(|(hadd, mut by_uuid)| {
                for value in by_uuid.values_mut().flat_map(|i| i.values_mut()) {
                    value.hadd = Some(hadd);
                }
                (hadd, by_uuid)
            })
            .collect();
        DiscoveryData::Values(values)
    });
    (
        info_kind(),
        nodes,
        values,
        (
            option::of(hadd()),
            option::of(text()),
            option::of(status()),
            option::of(text()),
        ),
        extra(),
    )
        .prop_map(
            |(kind, nodes, values, (reply_hadd, request_id, status, error), extra)| {
                DiscoveryReply {
                    kind,
                    reply_hadd,
                    request_id,
                    status,
                    error,
                    data: if kind == InfoKind::Nodes {
                        nodes
                    } else {
                        values
                    },
                    extra,
                }
            },
        )
}

pub fn target() -> impl Strategy<Value = HaddTarget> {
    prop_oneof![
        hadd().prop_map(HaddTarget::Node),
        (0u16..=9999).prop_map(|ctrl| HaddTarget::AllNodes { ctrl }),
    ]
}

pub fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (
        target(),
        state(),
        option::of(0u64..(1 << 53)),
        option::of(hadd()),
    )
        .prop_map(|(target, state, epoch, observer)| Heartbeat {
            target,
            state,
            epoch,
            observer,
        })
}

pub fn lease_part() -> impl Strategy<Value = LeasePart> {
    prop_oneof![
        any::<i64>().prop_map(LeasePart::Number),
        "[g-z]{1,6}".prop_map(LeasePart::Text),
    ]
}

fn non_null_data() -> impl Strategy<Value = Data> {
    data().prop_filter("null is absence", |datum| !datum.is_null())
}

pub fn lease_request() -> impl Strategy<Value = LeaseRequest> {
    (
        text(),
        lease_part(),
        lease_part(),
        option::of(btree_map(name(), data(), 0..3)),
    )
        .prop_map(|(rep_uuid, add_ctrl, add_node, options)| LeaseRequest {
            rep_uuid,
            add_ctrl,
            add_node,
            options,
        })
}

pub fn lease_reply() -> impl Strategy<Value = LeaseReply> {
    (
        (
            any::<u16>(),
            option::of(text()),
            text(),
            option::of(lease_part()),
            option::of(lease_part()),
        ),
        (
            option::of(text()),
            option::of(text()),
            option::of(non_null_data()),
            option::of(state()),
        ),
        (
            option::of(prop_oneof![
                any::<i64>().prop_map(Timestamp::Millis),
                text().prop_map(Timestamp::Text)
            ]),
            option::of(non_null_data()),
            extra(),
        ),
    )
        .prop_map(
            |(
                (msg_status, msg_error, rep_uuid, add_ctrl, add_node),
                (name, location, cmd_classes, state),
                (last_seen, params, extra),
            )| LeaseReply {
                msg_status,
                msg_error,
                rep_uuid,
                add_ctrl,
                add_node,
                name,
                location,
                cmd_classes,
                state,
                last_seen,
                params,
                extra,
            },
        )
}

/// A message with a topic it can travel on.
pub fn topic_and_message() -> impl Strategy<Value = (Topic, Message)> {
    prop_oneof![
        heartbeat().prop_map(|beat| {
            let hadd = match beat.target {
                HaddTarget::Node(hadd) => hadd,
                HaddTarget::AllNodes { ctrl } => Hadd::new(ctrl, 0),
            };
            (Topic::Heartbeat(hadd), Message::Heartbeat(beat))
        }),
        heartbeat().prop_map(|beat| (Topic::HeartbeatOnBehalf, Message::HeartbeatOnBehalf(beat))),
        (request(), hadd())
            .prop_map(|(request, hadd)| (Topic::NodeRequest(hadd), Message::Request(request))),
        request().prop_map(|request| (Topic::BroadcastRequest, Message::Request(request))),
        (value_reply(), hadd())
            .prop_map(|(reply, hadd)| (Topic::NodeReply(hadd), Message::ValueReply(reply))),
        (discovery_reply(), hadd()).prop_map(|(reply, hadd)| (
            Topic::BroadcastReply(hadd),
            Message::DiscoveryReply(reply)
        )),
        discovery_reply()
            .prop_map(|reply| (Topic::ResolvBroadcast, Message::DiscoveryReply(reply))),
        (value_descriptor(), genre(), hadd(), name()).prop_map(|(value, genre, hadd, uuid)| {
            (
                Topic::Value { genre, hadd, uuid },
                Message::Value(ValuePublication::Single(Box::new(value))),
            )
        }),
        (instances(), genre(), hadd(), name()).prop_map(|(instances, genre, hadd, uuid)| {
            (
                Topic::Value { genre, hadd, uuid },
                Message::Value(ValuePublication::Instances(instances)),
            )
        }),
        (hadd(), state(), option::of(0u64..(1 << 53))).prop_map(|(hadd, state, epoch)| {
            (
                Topic::ResolvHeartbeat,
                Message::ResolvHeartbeat(ResolvHeartbeat { hadd, state, epoch }),
            )
        }),
        lease_request().prop_map(|request| {
            (
                Topic::Lease(janitoo_protocol::LeaseOp::New),
                Message::Lease(request),
            )
        }),
        lease_reply()
            .prop_map(|reply| (Topic::ReplyByUuid("r-1".into()), Message::LeaseReply(reply))),
    ]
}

/// One topic of every family, for feeding garbage.
pub fn every_topic_family() -> Vec<Topic> {
    [
        "/dhcp/heartbeat/0220/0001",
        "/dhcp/heartbeat/",
        "/broadcast/request",
        "/broadcast/reply/9999/9990",
        "/nodes/0220/0000/request",
        "/nodes/9999/9990/reply",
        "/values/user/0220/0001/temperature",
        "/dhcp/resolv/request/",
        "/dhcp/resolv/reply/0002/0000",
        "/dhcp/resolv/broadcast/",
        "/dhcp/resolv/heartbeat",
        "/dhcp/resolv/hadd",
        "/dhcp/lease/new",
        "/reply/abc",
    ]
    .iter()
    .map(|text| Topic::parse(text).unwrap())
    .collect()
}
