//! Heartbeats: a node's own (`/dhcp/heartbeat/<hadd>`, a bare state word or JSON), those the
//! primary sends on behalf of others (`/dhcp/heartbeat/`, JSON), and the primary's own resolv
//! heartbeat (`/dhcp/resolv/heartbeat`).

use serde_json::Value;

use crate::error::{ProtocolError, Result};
use crate::fields::{as_i64, invalid, Reader, Writer};
use crate::hadd::{Hadd, HaddTarget};
use crate::model::NodeState;
use crate::node::as_state;

/// A heartbeat: the state of one node (or of every node of a controller).
///
/// `epoch` and `observer` are our additions for heartbeats sent on behalf of a node: the
/// primary's election epoch (receivers ignore lower epochs) and the primary's own address, so
/// that a heartbeat on behalf is never mistaken for one the node sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Whose state this is.
    pub target: HaddTarget,
    /// The state.
    pub state: NodeState,
    /// The epoch of the primary that sent it on behalf of the node.
    pub epoch: Option<u64>,
    /// The primary that sent it on behalf of the node.
    pub observer: Option<Hadd>,
}

impl Heartbeat {
    /// A node's own heartbeat.
    pub fn own(hadd: Hadd, state: NodeState) -> Heartbeat {
        Heartbeat {
            target: HaddTarget::Node(hadd),
            state,
            epoch: None,
            observer: None,
        }
    }

    /// A heartbeat sent by `observer`, primary of `epoch`, on behalf of `target`.
    pub fn on_behalf(
        target: HaddTarget,
        state: NodeState,
        epoch: u64,
        observer: Hadd,
    ) -> Heartbeat {
        Heartbeat {
            target,
            state,
            epoch: Some(epoch),
            observer: Some(observer),
        }
    }

    /// Whether this was sent by someone else than the node itself.
    pub fn is_on_behalf(&self) -> bool {
        self.observer.is_some() || self.epoch.is_some()
    }

    /// Whether the bare-word form can carry it (one node, no additions).
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.target, HaddTarget::Node(_)) && !self.is_on_behalf()
    }

    /// Decodes a heartbeat published on `/dhcp/heartbeat/<hadd>` whose payload was not JSON
    /// or was a JSON string: the payload is the state.
    pub(crate) fn from_word(hadd: Hadd, word: &str) -> Result<Heartbeat> {
        let state = as_state(&Value::from(word), "state")?;
        Ok(Heartbeat::own(hadd, state))
    }

    /// Decodes the JSON form `{"add_ctrl", "add_node", "state"?, "epoch"?, "observer"?}`.
    pub(crate) fn from_tree(tree: &Value) -> Result<Heartbeat> {
        let fields = Reader::new(tree, "")?;
        Ok(Heartbeat {
            target: read_target(&fields)?,
            state: fields
                .optional("state", as_state)?
                .unwrap_or(NodeState::Online),
            epoch: fields.optional("epoch", as_epoch)?,
            observer: fields.opt_hadd("observer")?,
        })
    }

    /// The JSON form, with integer `add_ctrl` and `add_node` as the original's dispatch writes.
    pub(crate) fn to_tree(&self) -> Value {
        let node = match self.target {
            HaddTarget::Node(hadd) => i64::from(hadd.node),
            HaddTarget::AllNodes { .. } => -1,
        };
        Writer::new()
            .put("add_ctrl", self.target.ctrl())
            .put("add_node", node)
            .put("state", self.state.as_str())
            .put_some("epoch", self.epoch)
            .put_some("observer", self.observer.map(|hadd| hadd.to_string()))
            .finish()
    }
}

/// The primary network controller's heartbeat on `/dhcp/resolv/heartbeat`, plus our `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvHeartbeat {
    /// The primary's address.
    pub hadd: Hadd,
    /// Its state (ONLINE while it is primary).
    pub state: NodeState,
    /// Its election epoch; absent from the original's DHCP server.
    pub epoch: Option<u64>,
}

impl ResolvHeartbeat {
    pub(crate) fn from_tree(tree: &Value) -> Result<ResolvHeartbeat> {
        let fields = Reader::new(tree, "")?;
        let hadd = match read_target(&fields)? {
            HaddTarget::Node(hadd) => hadd,
            HaddTarget::AllNodes { .. } => {
                return Err(invalid(
                    "add_node",
                    "a node number 0 to 65535",
                    &Value::from(-1),
                ))
            }
        };
        Ok(ResolvHeartbeat {
            hadd,
            state: fields
                .optional("state", as_state)?
                .unwrap_or(NodeState::Online),
            epoch: fields.optional("epoch", as_epoch)?,
        })
    }

    /// Zero-padded text parts, as the original DHCP server writes them.
    pub(crate) fn to_tree(&self) -> Value {
        Writer::new()
            .put("add_ctrl", format!("{:04}", self.hadd.ctrl))
            .put("add_node", format!("{:04}", self.hadd.node))
            .put("state", self.state.as_str())
            .put_some("epoch", self.epoch)
            .finish()
    }
}

fn as_epoch(value: &Value, path: &str) -> Result<u64> {
    if let Some(epoch) = value.as_u64() {
        return Ok(epoch);
    }
    let epoch = as_i64(value, path).map_err(|_| invalid(path, "an epoch 0 or more", value))?;
    u64::try_from(epoch).map_err(|_| invalid(path, "an epoch 0 or more", value))
}

/// `add_ctrl` and `add_node`, integers or numeric text; `add_node = -1` means every node.
fn read_target(fields: &Reader<'_>) -> Result<HaddTarget> {
    let part = |key: &str| -> Result<i64> { fields.required(key, as_i64) };
    let (ctrl, node) = (part("add_ctrl")?, part("add_node")?);
    let ctrl = u16::try_from(ctrl).map_err(|_| ProtocolError::InvalidField {
        field: fields.path("add_ctrl"),
        expected: "a controller number 0 to 65535",
        found: format!("number {ctrl}"),
    })?;
    match node {
        -1 => Ok(HaddTarget::AllNodes { ctrl }),
        node => u16::try_from(node)
            .map(|node| HaddTarget::Node(Hadd::new(ctrl, node)))
            .map_err(|_| ProtocolError::InvalidField {
                field: fields.path("add_node"),
                expected: "a node number 0 to 65535, or -1 for all",
                found: format!("number {node}"),
            }),
    }
}
