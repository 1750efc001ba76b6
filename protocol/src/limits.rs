//! What a client may send, by default (`[limits]` of a controller's configuration changes
//! them): the one place these numbers are written.

/// The largest payload a controller accepts or sends, bytes (`[limits] max_payload`): Janitoo
/// discovery answers reach about 100 KB.
pub const DEFAULT_MAX_PAYLOAD: usize = 256 << 10;

/// The longest string a value may be set to, bytes (`[limits] max_string`), unless the value's
/// own spec says otherwise.
pub const DEFAULT_MAX_STRING: usize = 4 << 10;

/// Requests a controller works on at once (`[limits] max_in_flight`); more are refused at once
/// with 503.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Nodes a network controller watches at most (`[network] max_nodes`).
pub const DEFAULT_MAX_NODES: usize = 10_000;

/// Discovery requests (`/broadcast/request`) and resolv requests (`/dhcp/resolv/request/`) a
/// controller reads in a burst; beyond, [`DISCOVERY_RATE`] a second. They ask for whole maps and
/// every bus's nodes: what is beyond is dropped unread, and counted.
pub const DISCOVERY_BURST: f64 = 50.0;

/// Discovery and resolv requests read a second after the burst.
pub const DISCOVERY_RATE: f64 = 20.0;

/// Lease requests (`/dhcp/lease/<op>`, `/dhcp/resolv/hadd`...) a controller reads in a burst;
/// beyond, [`LEASE_RATE`] a second. A bus and its components ask together at start; what is
/// beyond is dropped unread, and counted (the asker tries again later).
pub const LEASE_BURST: f64 = 40.0;

/// Lease requests read a second after the burst.
pub const LEASE_RATE: f64 = 10.0;

/// Values (instances) a network controller keeps of one node (`[network] max_values_per_node`):
/// what the node described, in discovery and its own answers. A value only published on
/// `/values/...`, for a uuid the node never described, is dropped and counted.
pub const DEFAULT_MAX_VALUES_PER_NODE: usize = 256;

/// Requests to nodes (`/nodes/<hadd>/request`) a process reads a second
/// (`[limits] max_requests_per_second`), after a burst of a fifth of it. Anyone can send them
/// with a new `reply_hadd` each, which no share by requester can tell apart: what is beyond is
/// dropped unread, and counted. An operator's requests signed with the network's key are read
/// from a budget of their own first.
pub const DEFAULT_MAX_REQUESTS_PER_SECOND: usize = 5_000;

/// Requests signed with the network's key a process reads in a burst, before and beside the
/// others; beyond, [`SIGNED_REQUEST_RATE`] a second. Past this share they count as unsigned.
pub const SIGNED_REQUEST_BURST: f64 = 200.0;

/// Signed requests read a second after their burst.
pub const SIGNED_REQUEST_RATE: f64 = 200.0;
