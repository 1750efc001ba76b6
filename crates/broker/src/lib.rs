//! # janitoo-broker
//!
//! The embedded MQTT broker (rumqttd) that makes `janitoo demo` and a configuration without a
//! broker address work with nothing installed. Deployments use Mosquitto or any MQTT 3.1.1
//! broker; tests run against both.
//!
//! rumqttd's pitfalls, hidden here: `Broker::start` blocks for ever and cannot be stopped, so the
//! broker runs on its own thread until the process exits; it cannot report the port it bound,
//! so a port 0 is replaced by a free port first, and [`EmbeddedBroker::start`] returns only once
//! the port accepts connections; its default router configuration has zero-sized segments, so
//! every limit is set; its Prometheus exporter and console are left off.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use thiserror::Error;

/// How long [`EmbeddedBroker::start`] waits for the broker to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the embedded broker could not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// Something already listens on the address.
    #[error("cannot listen on {addr}: {source} (is another broker running there?)")]
    AddressInUse {
        /// The address.
        addr: SocketAddr,
        /// The error of the test bind.
        source: std::io::Error,
    },
    /// The broker did not accept connections in time.
    #[error("the embedded broker on {addr} did not accept connections within {seconds} s")]
    NotReady {
        /// The address.
        addr: SocketAddr,
        /// The wait.
        seconds: u64,
    },
    /// The broker's thread could not be started, or ended.
    #[error("the embedded broker on {addr} stopped: {reason}")]
    Stopped {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// A free TCP port on `ip` (bound, read, released: another process may take it in between).
pub fn free_local_port(ip: IpAddr) -> Result<u16, BrokerError> {
    let addr = SocketAddr::new(ip, 0);
    TcpListener::bind(addr)
        .and_then(|listener| listener.local_addr())
        .map(|bound| bound.port())
        .map_err(|source| BrokerError::AddressInUse { addr, source })
}

fn config(listen: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 8 << 20,
        max_inflight_count: 1_000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "janitoo-v4".to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200_000,
            max_segment_size: 100 << 20,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("janitoo".to_owned(), server)])),
        ..Config::default()
    }
}

/// A running embedded broker. It lives until the process exits: rumqttd cannot be stopped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `listen` (port 0: a free port) and returns once it accepts
    /// connections.
    pub fn start(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        let addr = if listen.port() == 0 {
            SocketAddr::new(listen.ip(), free_local_port(listen.ip())?)
        } else {
            listen
        };
        drop(TcpListener::bind(addr).map_err(|source| BrokerError::AddressInUse { addr, source })?);
        let thread = std::thread::Builder::new()
            .name("janitoo-broker".to_owned())
            .spawn(move || {
                let mut broker = Broker::new(config(addr));
                if let Err(err) = broker.start() {
                    tracing::error!(%addr, %err, "embedded broker stopped");
                }
            })
            .map_err(|err| BrokerError::Stopped {
                addr,
                reason: err.to_string(),
            })?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            if thread.is_finished() {
                return Err(BrokerError::Stopped {
                    addr,
                    reason: "its thread ended at start".to_owned(),
                });
            }
            if Instant::now() > deadline {
                return Err(BrokerError::NotReady {
                    addr,
                    seconds: READY_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(EmbeddedBroker { addr, thread })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the broker's thread ends (which it does not, unless it fails).
    pub fn wait(self) -> BrokerError {
        let addr = self.addr;
        let reason = match self.thread.join() {
            Ok(()) => "it returned".to_owned(),
            Err(_) => "it panicked".to_owned(),
        };
        BrokerError::Stopped { addr, reason }
    }
}

/// Runs a broker on `listen` in the foreground, for `janitoo broker`: returns only on failure.
pub fn run_foreground(listen: SocketAddr) -> Result<(), BrokerError> {
    let broker = EmbeddedBroker::start(listen)?;
    tracing::info!(addr = %broker.addr(), "embedded MQTT broker listening");
    Err(broker.wait())
}
