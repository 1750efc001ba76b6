//! Home addresses (HADD): `cccc/nnnn`, a controller part and a node part.

use std::fmt;
use std::str::FromStr;

use crate::error::{ProtocolError, Result};

/// A Janitoo home address: controller part `ctrl` and node part `node`.
///
/// Written `"%04d/%04d"` on the wire (`0220/0001`); node `0000` is the controller itself, which
/// owns the sub-network `ctrl/0001...`. Parsing accepts 1 to 5 ASCII digits per part (the
/// original pads to 4 but never truncates), so `"220/1"` and `"0220/0001"` are the same address.
///
/// ```
/// use janitoo_protocol::Hadd;
/// let hadd: Hadd = "0220/0001".parse().unwrap();
/// assert_eq!((hadd.ctrl, hadd.node), (220, 1));
/// assert_eq!(hadd.to_string(), "0220/0001");
/// assert!(hadd.controller().is_controller());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hadd {
    /// The controller part (`add_ctrl`).
    pub ctrl: u16,
    /// The node part (`add_node`); 0 is the controller node.
    pub node: u16,
}

impl Hadd {
    /// The address `ctrl/node`.
    pub const fn new(ctrl: u16, node: u16) -> Self {
        Hadd { ctrl, node }
    }

    /// Whether this is a controller node (`cccc/0000`).
    pub const fn is_controller(self) -> bool {
        self.node == 0
    }

    /// The controller node that owns this address (`cccc/0000`).
    pub const fn controller(self) -> Hadd {
        Hadd::new(self.ctrl, 0)
    }

    /// Parses `cccc/nnnn`.
    pub fn parse(text: &str) -> Result<Hadd> {
        let bad = |reason| ProtocolError::InvalidHadd {
            text: text.to_owned(),
            reason,
        };
        let (ctrl, node) = text
            .split_once('/')
            .ok_or_else(|| bad("expected two numbers separated by '/'"))?;
        Ok(Hadd::new(
            parse_part(ctrl).map_err(bad)?,
            parse_part(node).map_err(bad)?,
        ))
    }
}

fn parse_part(part: &str) -> std::result::Result<u16, &'static str> {
    if part.is_empty() {
        return Err("a part is empty");
    }
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a part is not a decimal number");
    }
    if part.len() > 5 {
        return Err("a part has more than 5 digits");
    }
    part.parse::<u16>()
        .map_err(|_| "a part is larger than 65535")
}

impl fmt::Display for Hadd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}/{:04}", self.ctrl, self.node)
    }
}

impl FromStr for Hadd {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self> {
        Hadd::parse(s)
    }
}

/// What a network heartbeat or a lease designates: one node, or every node of a controller.
///
/// On the wire the "all nodes" form is `add_node = -1` in JSON. As text we write it `cccc/*`
/// (and accept `cccc/-1`), a notation of ours for logs and command lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaddTarget {
    /// One node.
    Node(Hadd),
    /// Every node of the controller `ctrl`, the controller included.
    AllNodes {
        /// The controller part.
        ctrl: u16,
    },
}

impl HaddTarget {
    /// The controller part of the target.
    pub fn ctrl(self) -> u16 {
        match self {
            HaddTarget::Node(hadd) => hadd.ctrl,
            HaddTarget::AllNodes { ctrl } => ctrl,
        }
    }

    /// Whether `hadd` is designated by this target.
    pub fn covers(self, hadd: Hadd) -> bool {
        match self {
            HaddTarget::Node(one) => one == hadd,
            HaddTarget::AllNodes { ctrl } => hadd.ctrl == ctrl,
        }
    }
}

impl From<Hadd> for HaddTarget {
    fn from(hadd: Hadd) -> Self {
        HaddTarget::Node(hadd)
    }
}

impl fmt::Display for HaddTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaddTarget::Node(hadd) => hadd.fmt(f),
            HaddTarget::AllNodes { ctrl } => write!(f, "{ctrl:04}/*"),
        }
    }
}

impl FromStr for HaddTarget {
    type Err = ProtocolError;
    fn from_str(text: &str) -> Result<Self> {
        match text.split_once('/') {
            Some((ctrl, "*" | "-1")) => {
                let ctrl = parse_part(ctrl).map_err(|reason| ProtocolError::InvalidHadd {
                    text: text.to_owned(),
                    reason,
                })?;
                Ok(HaddTarget::AllNodes { ctrl })
            }
            _ => Hadd::parse(text).map(HaddTarget::Node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_pads() {
        assert_eq!(Hadd::parse("220/1").unwrap().to_string(), "0220/0001");
        assert_eq!(Hadd::parse("10000/0001").unwrap().to_string(), "10000/0001");
    }

    #[test]
    fn rejects_bad_text_with_a_reason() {
        for bad in [
            "",
            "0220",
            "0220/",
            "/0001",
            "02a0/0001",
            "0220/0001/2",
            "+220/1",
            "70000/1",
        ] {
            let err = Hadd::parse(bad).unwrap_err();
            assert!(
                matches!(err, ProtocolError::InvalidHadd { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn controller_test() {
        assert!(Hadd::new(220, 0).is_controller());
        assert!(!Hadd::new(220, 1).is_controller());
        assert_eq!(Hadd::new(220, 5).controller(), Hadd::new(220, 0));
    }

    #[test]
    fn all_nodes_target() {
        let all: HaddTarget = "0220/*".parse().unwrap();
        assert_eq!(all, HaddTarget::AllNodes { ctrl: 220 });
        assert_eq!("0220/-1".parse::<HaddTarget>().unwrap(), all);
        assert_eq!(all.to_string(), "0220/*");
        assert!(all.covers(Hadd::new(220, 7)));
        assert!(!all.covers(Hadd::new(221, 7)));
    }
}
