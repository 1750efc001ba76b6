//! # janitoo-integration-tests
//!
//! Multi-process tests of janitoo-rs against real MQTT brokers on loopback: the embedded broker
//! (`janitoo broker`, as a process so that it can be killed and restarted) and Mosquitto
//! (skipped when it is not installed, unless `JANITOO_TEST_MOSQUITTO=1`, as CI sets it; see
//! [`require`] for every such variable). The
//! tests live in `tests/`, numbered by topic (`t10_...`); this library holds their helpers: the
//! processes, and a plain MQTT client that speaks Janitoo.

pub mod client;
pub mod home_assistant;
pub mod nats;
pub mod netns;
pub mod network;
pub mod pair;
pub mod process;
pub mod procfs;
pub mod require;
pub mod retained;
pub mod sysfs;
pub mod tls;
pub mod watch;
pub mod web;

pub use client::Client;
pub use process::{BrokerKind, BrokerProcess, ControllerProcess};
