//! What the bridge reads of each kind of message, decided before any work and before anything
//! is queued for the actors: the control plane always; discovery and resolv requests, and
//! requests to nodes, each within a budget of its kind (a burst, then a rate). What is beyond
//! is dropped and counted. A request signed with the network's key is read from a share of
//! its own first, which no stranger can spend: an operator is served during a flood.

use std::time::Duration;

use janitoo_protocol::control_plane::requests::SignedRequests;
use janitoo_protocol::limits::{
    DISCOVERY_BURST, DISCOVERY_RATE, LEASE_BURST, LEASE_RATE, SIGNED_REQUEST_BURST,
    SIGNED_REQUEST_RATE,
};
use janitoo_protocol::rate::TokenBucket;
use tokio::time::Instant;

/// The kinds of inbound message that have a budget of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/broadcast/request` and `/dhcp/resolv/request/...`: each asks for a whole map or every
    /// bus's nodes.
    Discovery,
    /// `/nodes/<hadd>/request`: a get or set of one value.
    Request,
    /// `/dhcp/lease/<op>` and the look-ups `/dhcp/resolv/<hadd|name|cmd_classes>`: each may
    /// change the lease table.
    Lease,
    /// The rest: the control plane (heartbeats, the primary's, candidacies, the map) and
    /// values (which the network core bounds per node).
    Unbudgeted,
}

/// The kind of a message on `topic`.
pub fn kind_of(topic: &str) -> Kind {
    if topic == "/broadcast/request" || topic.starts_with("/dhcp/resolv/request/") {
        Kind::Discovery
    } else if topic.starts_with("/nodes/") && topic.ends_with("/request") {
        Kind::Request
    } else if topic.starts_with("/dhcp/lease/")
        || matches!(
            topic,
            "/dhcp/resolv/hadd" | "/dhcp/resolv/name" | "/dhcp/resolv/cmd_classes"
        )
    {
        Kind::Lease
    } else {
        Kind::Unbudgeted
    }
}

/// Whether a message is read, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Read; `signed`: a request read from the signed share.
    Read {
        /// Signed with the network's key, fresh and new.
        signed: bool,
    },
    /// Beyond its kind's budget: dropped unread.
    OverBudget(Kind),
}

/// The budgets of one bridge.
#[derive(Debug)]
pub struct InboundBudget {
    discovery: TokenBucket,
    leases: TokenBucket,
    requests: TokenBucket,
    signed: TokenBucket,
    signatures: Option<SignedRequests>,
    origin: Instant,
}

impl InboundBudget {
    /// Full budgets at `now`: requests to nodes `requests_per_second` (`[limits]
    /// max_requests_per_second`) after a burst of a fifth of it; `signatures`: the check of
    /// signed requests, on a keyed network.
    pub fn new(
        now: Instant,
        requests_per_second: usize,
        signatures: Option<SignedRequests>,
    ) -> InboundBudget {
        let rate = requests_per_second as f64;
        InboundBudget {
            discovery: TokenBucket::full(DISCOVERY_BURST, DISCOVERY_RATE, Duration::ZERO),
            leases: TokenBucket::full(LEASE_BURST, LEASE_RATE, Duration::ZERO),
            requests: TokenBucket::full((rate / 5.0).max(1.0), rate, Duration::ZERO),
            signed: TokenBucket::full(SIGNED_REQUEST_BURST, SIGNED_REQUEST_RATE, Duration::ZERO),
            signatures,
            origin: now,
        }
    }

    /// Whether a message on `topic` is read at `now` (`wall_ms`: the wall clock, for a
    /// signature's stamp), and paid for if budgeted. A signed request is read from the signed
    /// share while it lasts, and remembered so that it is read once; past the share, or
    /// not believed, it is read as any other.
    pub fn reads(&mut self, topic: &str, payload: &[u8], now: Instant, wall_ms: u64) -> Reading {
        let at = now.saturating_duration_since(self.origin);
        let (bucket, kind) = match kind_of(topic) {
            Kind::Unbudgeted => return Reading::Read { signed: false },
            Kind::Discovery => (&mut self.discovery, Kind::Discovery),
            Kind::Lease => (&mut self.leases, Kind::Lease),
            Kind::Request => {
                if let Some(signatures) = &mut self.signatures {
                    if let Ok(verified) = signatures.check(topic, payload, wall_ms) {
                        if self.signed.take_one(at) {
                            signatures.remember(verified, wall_ms);
                            return Reading::Read { signed: true };
                        }
                    }
                }
                (&mut self.requests, Kind::Request)
            }
        };
        if bucket.take_one(at) {
            Reading::Read { signed: false }
        } else {
            Reading::OverBudget(kind)
        }
    }
}

#[cfg(test)]
mod tests {
    use janitoo_protocol::control_plane::requests::sign_request;
    use janitoo_protocol::control_plane::ControlKey;
    use janitoo_protocol::{Codec, CommandClass, Genre, Hadd, Message, Request, Topic};

    use super::*;

    const READ: Reading = Reading::Read { signed: false };
    const SIGNED: Reading = Reading::Read { signed: true };
    const NOW_MS: u64 = 1_764_900_000_000;
    const TOPIC: &str = "/nodes/0220/0001/request";

    fn key() -> ControlKey {
        ControlKey::from_secret(b"the network's secret").unwrap()
    }

    const RATE: usize = 5_000;
    const BURST: usize = RATE / 5;

    fn keyed(now: Instant) -> InboundBudget {
        InboundBudget::new(now, RATE, Some(SignedRequests::new(key(), 30_000)))
    }

    fn get(id: usize) -> Request {
        let mut request =
            Request::get(Hadd::new(220, 1), "name", Genre::Config, CommandClass(0x70));
        request.reply_hadd = Some(Hadd::new(9999, 1));
        request.request_id = Some(format!("probe-{id}"));
        request
    }

    fn unsigned(id: usize) -> Vec<u8> {
        Message::Request(get(id)).encode(Codec::Json)
    }

    fn signed(id: usize, stamp_ms: u64) -> Vec<u8> {
        let topic = Topic::parse(TOPIC).unwrap();
        sign_request(&key(), &topic, get(id), Codec::Json, stamp_ms)
    }

    /// How many of `count` messages on `topic` are read as `reading`.
    fn count(budget: &mut InboundBudget, topic: &str, at: Instant, count: usize) -> usize {
        (0..count)
            .filter(|id| budget.reads(topic, &unsigned(*id), at, NOW_MS) == READ)
            .count()
    }

    #[test]
    fn each_kind_is_told_by_its_topic() {
        for topic in [
            "/broadcast/request",
            "/dhcp/resolv/request/",
            "/dhcp/resolv/request/x",
        ] {
            assert_eq!(kind_of(topic), Kind::Discovery, "{topic}");
        }
        for topic in [TOPIC, "/nodes/0001/0000/request"] {
            assert_eq!(kind_of(topic), Kind::Request, "{topic}");
        }
        for topic in [
            "/dhcp/resolv/heartbeat",
            "/dhcp/heartbeat/0001/0000",
            "/dhcp/heartbeat/",
            "/dhcp/resolv/reply/0002/0000",
            "/dhcp/resolv/broadcast/",
            "/values/system/0001/0000/network_controller",
            "/values/user/0220/0001/request",
            "/nodes/0220/0001/reply",
            "/broadcast/reply/0002/0000",
            "/broadcast/requests",
        ] {
            assert_eq!(kind_of(topic), Kind::Unbudgeted, "{topic}");
        }
    }

    #[test]
    fn a_burst_then_the_rate_and_the_control_plane_always() {
        let start = Instant::now();
        let mut budget = InboundBudget::new(start, RATE, None);
        let resolv = "/dhcp/resolv/request/";
        assert_eq!(
            count(&mut budget, resolv, start, 1_000),
            DISCOVERY_BURST as usize
        );
        assert_eq!(
            budget.reads(resolv, b"{}", start, NOW_MS),
            Reading::OverBudget(Kind::Discovery)
        );
        assert_eq!(
            budget.reads("/dhcp/resolv/heartbeat", b"{}", start, NOW_MS),
            READ
        );
        let second = start + Duration::from_secs(1);
        assert_eq!(
            count(&mut budget, resolv, second, 1_000),
            DISCOVERY_RATE as usize
        );
        assert_eq!(count(&mut budget, resolv, second, 1_000), 0);
        assert_eq!(
            count(&mut budget, "/dhcp/heartbeat/0220/0001", second, 1_000),
            1_000
        );
    }

    #[test]
    fn requests_have_a_budget_of_their_own() {
        let start = Instant::now();
        let mut budget = InboundBudget::new(start, RATE, None);
        assert_eq!(count(&mut budget, TOPIC, start, 2 * BURST), BURST);
        assert_eq!(
            budget.reads(TOPIC, &unsigned(0), start, NOW_MS),
            Reading::OverBudget(Kind::Request)
        );
        // Spent requests leave discovery's budget whole, and the reverse.
        assert_eq!(count(&mut budget, "/broadcast/request", start, 1), 1);
        // The rate, a tenth of a second's worth at a time (the burst caps what is saved up).
        let tenth = start + Duration::from_millis(100);
        assert_eq!(count(&mut budget, TOPIC, tenth, RATE), RATE / 10);
    }

    #[test]
    fn a_signed_request_is_read_through_a_flood_that_spent_the_budget() {
        let start = Instant::now();
        let mut budget = keyed(start);
        count(&mut budget, TOPIC, start, BURST);
        assert_eq!(count(&mut budget, TOPIC, start, 1), 0, "spent");
        assert_eq!(
            budget.reads(TOPIC, &signed(1, NOW_MS), start, NOW_MS),
            SIGNED
        );
        // Read once: the same again is a replay, and reads as unsigned (none left).
        assert_eq!(
            budget.reads(TOPIC, &signed(1, NOW_MS), start, NOW_MS),
            Reading::OverBudget(Kind::Request)
        );
        // Stale, or signed with another key: no share either.
        let stale = signed(2, NOW_MS - 60_000);
        assert_eq!(
            budget.reads(TOPIC, &stale, start, NOW_MS),
            Reading::OverBudget(Kind::Request)
        );
        let topic = Topic::parse(TOPIC).unwrap();
        let other = ControlKey::from_secret(b"another network's secret").unwrap();
        let forged = sign_request(&other, &topic, get(3), Codec::Json, NOW_MS);
        assert_eq!(
            budget.reads(TOPIC, &forged, start, NOW_MS),
            Reading::OverBudget(Kind::Request)
        );
        // Unkeyed, a signed request is a request like any other.
        let mut unkeyed = InboundBudget::new(start, RATE, None);
        assert_eq!(
            unkeyed.reads(TOPIC, &signed(4, NOW_MS), start, NOW_MS),
            READ
        );
    }

    #[test]
    fn past_the_signed_share_a_signed_request_is_read_as_any_other() {
        let start = Instant::now();
        let mut budget = keyed(start);
        let share = SIGNED_REQUEST_BURST as usize;
        let readings: Vec<Reading> = (0..share + 2)
            .map(|id| budget.reads(TOPIC, &signed(id, NOW_MS), start, NOW_MS))
            .collect();
        assert!(readings[..share].iter().all(|reading| *reading == SIGNED));
        assert_eq!(readings[share..], [READ, READ]);
        // ...and remembered only when read from the share: the unsigned read is no replay.
        assert_eq!(
            budget.reads(TOPIC, &signed(share, NOW_MS), start, NOW_MS),
            READ
        );
        let later = start + Duration::from_secs(1);
        assert_eq!(
            budget.reads(TOPIC, &signed(share, NOW_MS), later, NOW_MS),
            SIGNED
        );
    }
}
