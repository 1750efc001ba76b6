//! The pure rules of the network core: which messages tell a node's period, and what must be
//! dispatched for the network to know a node's state.

use crate::hadd::Hadd;
use crate::message::Message;
use crate::model::{Genre, InfoKind, NodeState};
use crate::node::builtin::HEARTBEAT as HEARTBEAT_UUID;
use crate::reply::DiscoveryData;
use crate::topic::Topic;
use crate::value::data_as_f64;

/// The heartbeat periods (in seconds) a message tells: node info, and `heartbeat` values
/// (published, answered, or in a discovery of system values).
pub(super) fn told_periods(topic: &Topic, message: &Message) -> Vec<(Hadd, f64)> {
    let heartbeat = |value: &crate::ValueDescriptor| {
        (value.uuid == HEARTBEAT_UUID && value.genre == Genre::System && value.index == 0)
            .then(|| data_as_f64(&value.data))
            .flatten()
    };
    match (topic, message) {
        (
            Topic::Value {
                genre: Genre::System,
                hadd,
                uuid,
            },
            Message::Value(publication),
        ) if uuid == HEARTBEAT_UUID => publication
            .instances()
            .into_iter()
            .filter(|value| value.index == 0)
            .filter_map(|value| data_as_f64(&value.data))
            .map(|seconds| (*hadd, seconds))
            .collect(),
        (_, Message::ValueReply(reply)) if reply.status().is_success() => reply
            .value
            .hadd
            .zip(heartbeat(&reply.value))
            .into_iter()
            .collect(),
        (_, Message::DiscoveryReply(reply)) => match &reply.data {
            DiscoveryData::Nodes(nodes) => nodes
                .values()
                .map(|node| (node.hadd, node.heartbeat))
                .collect(),
            DiscoveryData::Values(values) => values
                .iter()
                .filter_map(|(hadd, by_uuid)| {
                    let value = by_uuid.get(HEARTBEAT_UUID)?.get(&0)?;
                    let seconds = data_as_f64(&value.data)?;
                    (reply.kind == InfoKind::Systems).then_some((*hadd, seconds))
                })
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// The states a silent node goes through, in order.
static SILENT_PATH: [NodeState; 3] = [NodeState::Pending, NodeState::Failed, NodeState::Dead];

/// How far along the silent path a state is (0: not on it).
fn progress(state: NodeState) -> usize {
    SILENT_PATH
        .iter()
        .position(|step| *step == state)
        .map_or(0, |at| at + 1)
}

/// What must be dispatched for the network, told `told`, to know `actual`: the rest of the
/// silent path, or OFFLINE. Nothing for an alive node: its own heartbeats tell.
pub(super) fn steps(told: NodeState, actual: NodeState) -> &'static [NodeState] {
    match actual {
        NodeState::Offline if told != NodeState::Offline => &[NodeState::Offline],
        NodeState::Pending | NodeState::Failed | NodeState::Dead => {
            &SILENT_PATH[progress(told).min(progress(actual))..progress(actual)]
        }
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_are_what_the_network_was_not_told_yet() {
        use NodeState::*;
        assert_eq!(steps(Online, Failed), [Pending, Failed]);
        assert_eq!(steps(Pending, Failed), [Failed]);
        assert_eq!(steps(Unknown, Dead), [Pending, Failed, Dead]);
        assert_eq!(steps(Failed, Failed), []);
        assert_eq!(steps(Failed, Pending), [], "never back along the path");
        assert_eq!(steps(Online, Offline), [Offline]);
        assert_eq!(steps(Offline, Offline), []);
        assert_eq!(steps(Pending, Online), []);
    }
}
