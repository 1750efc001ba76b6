//! # janitoo-actors
//!
//! The actix actors of a Janitoo controller process: `BusActor` (one per bus, on its own
//! arbiter, the controller node `cccc/0000`), `NodeActor` (one per component node), `ValueActor`
//! (one per value), `NetworkActor` and its `Supervisor` (the network map, primary election and
//! heartbeats on behalf of silent nodes), and `MqttBridge`, the only owner of the MQTT
//! connection. Actors are thin: decisions are made by the sans-IO state machines of
//! `janitoo-protocol`.
//!
//! Nothing is here yet: the runtime is built by the "controller runtime" issue.
