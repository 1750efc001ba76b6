//! # janitoo-integration-tests
//!
//! Multi-process tests of janitoo-rs against real MQTT brokers on loopback: the embedded broker
//! and Mosquitto (mandatory when `JANITOO_TEST_MOSQUITTO=1`, as CI sets it). The tests live in
//! `tests/`, numbered by topic (`t10_...`); this library holds their shared helpers.
