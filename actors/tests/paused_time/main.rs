//! The actors on tokio's paused clock: a node's and a value's timers, the supervisor driving
//! the network core, the bridge's lanes under a flood. One test binary (each binary links the
//! whole actor stack again).

mod bridge_lanes;
mod common;
mod node_timers;
mod supervisor;
