//! # janitoo-broker
//!
//! The embedded MQTT broker (rumqttd) that makes `janitoo demo` and a broker-less configuration
//! work with nothing installed. Production deployments use Mosquitto or any MQTT 3.1.1 broker.
//!
//! Nothing is here yet: the broker is built by the "controller runtime" issue.
