//! What the bridge reads of each kind of message, decided on the topic alone, before any work
//! and before anything is queued for the actors: the control plane always, discovery and resolv
//! requests within a budget (a burst, then a rate). What is beyond is dropped and counted.

use std::time::Duration;

use janitoo_protocol::limits::{DISCOVERY_BURST, DISCOVERY_RATE};
use janitoo_protocol::rate::TokenBucket;
use tokio::time::Instant;

/// The kinds of inbound message that have a budget of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/broadcast/request` and `/dhcp/resolv/request/...`: each asks for a whole map or every
    /// bus's nodes.
    Discovery,
    /// The rest: the control plane (heartbeats, the primary's, candidacies, the map), values,
    /// requests to a node (which the admission bounds).
    Unbudgeted,
}

/// The kind of a message on `topic`.
pub fn kind_of(topic: &str) -> Kind {
    if topic == "/broadcast/request" || topic.starts_with("/dhcp/resolv/request/") {
        Kind::Discovery
    } else {
        Kind::Unbudgeted
    }
}

/// The budgets of one bridge.
#[derive(Debug)]
pub struct InboundBudget {
    discovery: TokenBucket,
    origin: Instant,
}

impl InboundBudget {
    /// Full budgets at `now`.
    pub fn new(now: Instant) -> InboundBudget {
        InboundBudget {
            discovery: TokenBucket::full(DISCOVERY_BURST, DISCOVERY_RATE, Duration::ZERO),
            origin: now,
        }
    }

    /// Whether a message on `topic` is read at `now` (and, if budgeted, paid for).
    pub fn admits(&mut self, topic: &str, now: Instant) -> bool {
        match kind_of(topic) {
            Kind::Unbudgeted => true,
            Kind::Discovery => self
                .discovery
                .take_one(now.saturating_duration_since(self.origin)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_discovery_and_resolv_requests_are_budgeted() {
        for topic in [
            "/broadcast/request",
            "/dhcp/resolv/request/",
            "/dhcp/resolv/request/x",
        ] {
            assert_eq!(kind_of(topic), Kind::Discovery, "{topic}");
        }
        for topic in [
            "/dhcp/resolv/heartbeat",
            "/dhcp/heartbeat/0001/0000",
            "/dhcp/heartbeat/",
            "/dhcp/resolv/reply/0002/0000",
            "/dhcp/resolv/broadcast/",
            "/values/system/0001/0000/network_controller",
            "/nodes/0220/0001/request",
            "/broadcast/reply/0002/0000",
            "/broadcast/requests",
        ] {
            assert_eq!(kind_of(topic), Kind::Unbudgeted, "{topic}");
        }
    }

    #[test]
    fn a_burst_then_the_rate_and_the_control_plane_always() {
        let start = Instant::now();
        let mut budget = InboundBudget::new(start);
        let read = |budget: &mut InboundBudget, at: Instant, count: usize| {
            (0..count)
                .filter(|_| budget.admits("/dhcp/resolv/request/", at))
                .count()
        };
        assert_eq!(read(&mut budget, start, 1_000), DISCOVERY_BURST as usize);
        assert!(budget.admits("/dhcp/resolv/heartbeat", start));
        let second = start + Duration::from_secs(1);
        assert_eq!(read(&mut budget, second, 1_000), DISCOVERY_RATE as usize);
        assert_eq!(read(&mut budget, second, 1_000), 0);
        for _ in 0..1_000 {
            assert!(budget.admits("/dhcp/heartbeat/0220/0001", second));
        }
    }
}
