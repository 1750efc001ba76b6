//! # janitoo-broker
//!
//! The embedded MQTT 3.1.1 broker (rumqttd 0.20) that makes `janitoo broker`, `janitoo demo`
//! and a configuration without a broker address work with nothing else installed.
//! Deployments may use Mosquitto or any other MQTT 3.1.1 broker instead; the integration tests
//! run against both.
//!
//! [`EmbeddedBroker::start`] starts one in the background and returns once it answers MQTT;
//! [`run_foreground`] serves `janitoo broker --listen ADDR`; [`free_local_port`] picks a port
//! for tests.
//!
//! rumqttd's pitfalls, hidden here:
//!
//! - `Broker::start` blocks for ever and has no shutdown: the broker runs on its own thread
//!   (`janitoo-broker`) until the process exits. Dropping an [`EmbeddedBroker`] does not stop
//!   it.
//! - It cannot report the port it bound: a port 0 is replaced by a free port first.
//! - It reports nothing when it cannot listen (its listener thread logs an error and ends): the
//!   address is test-bound first, giving [`BrokerError::AddressInUse`], and
//!   [`EmbeddedBroker::start`] returns only once an MQTT CONNECT on the address is answered by
//!   a CONNACK (which also proves its router thread runs), or fails after [`READY_TIMEOUT`].
//! - A bare TCP connection closed before its CONNECT is logged by rumqttd at ERROR level, so
//!   the readiness probe is a real MQTT handshake with a keep-alive (rumqttd refuses a
//!   keep-alive of 0), closed without DISCONNECT, which rumqttd logs at INFO.
//! - Its default router configuration has zero-sized segments, so every limit is set here.
//!   rumqttd keeps, for each subscription filter, the messages that matched it in memory, up to
//!   `max_segment_count` segments of `max_segment_size` bytes (a subscriber that falls further
//!   behind skips ahead): see [`ROUTER_SEGMENT_SIZE`] and [`ROUTER_SEGMENT_COUNT`].
//! - Its Prometheus exporter, console, metrics timer, bridge, cluster, MQTT 5, WebSocket and
//!   TLS listeners are left off: one plain MQTT 3.1.1 listener, no authentication.
//! - It logs through `tracing`, verbosely: lines per connection at INFO, and a client's clean
//!   DISCONNECT at ERROR (`router-drop error=Recv(Disconnected)`). The binary's subscriber
//!   filters the `rumqttd` target.

pub mod nats;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use thiserror::Error;

/// How long [`EmbeddedBroker::start`] waits for the broker to answer MQTT.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest payload a client may publish by default: the controller's own default
/// `[limits] max_payload`. A client that publishes more is disconnected by the broker; nobody
/// else receives it.
pub use janitoo_protocol::limits::DEFAULT_MAX_PAYLOAD;

/// Room for the topic and the header of a packet, beside its payload (Janitoo topics are
/// under 100 bytes).
const PACKET_OVERHEAD: usize = 1 << 10;

/// The size of one segment of a subscription filter's in-memory log: 16 MiB.
pub const ROUTER_SEGMENT_SIZE: usize = 16 << 20;

/// How many segments a subscription filter's log keeps: at most 4 × 16 MiB of history per
/// filter, and a subscriber may lag at least 48 MiB behind before it loses messages.
pub const ROUTER_SEGMENT_COUNT: usize = 4;

/// The name of the thread that runs the broker.
const THREAD_NAME: &str = "janitoo-broker";

/// The client id of the readiness probe.
const PROBE_CLIENT_ID: &[u8] = b"janitoo-broker-ready-probe";

/// Why the embedded broker could not start, or stopped.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// Something already listens on the address.
    #[error(
        "cannot listen on {addr}: the address is already in use (is another MQTT broker \
         running there?)"
    )]
    AddressInUse {
        /// The address.
        addr: SocketAddr,
    },
    /// The address cannot be listened on for another reason (not a local address, a
    /// privileged port...).
    #[error("cannot listen on {addr}: {error}")]
    CannotListen {
        /// The address.
        addr: SocketAddr,
        /// The error of the test bind.
        error: io::Error,
    },
    /// No free port could be found on the address (port 0 was asked for).
    #[error("cannot find a free TCP port on {ip}: {error}")]
    NoFreePort {
        /// The IP address.
        ip: IpAddr,
        /// The error of the bind.
        error: io::Error,
    },
    /// The broker did not answer an MQTT CONNECT in time.
    #[error("the embedded MQTT broker on {addr} did not accept connections within {seconds} s")]
    NotReady {
        /// The address.
        addr: SocketAddr,
        /// How long it was waited for, in seconds.
        seconds: u64,
    },
    /// A TLS file of the embedded broker cannot be used.
    #[error("{}: {reason}", file.display())]
    Tls {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// The accounts file cannot be used.
    #[error(transparent)]
    Accounts(#[from] janitoo_config::LineFileError),
    /// The broker's thread could not be spawned.
    #[error("cannot start a thread for the embedded MQTT broker on {addr}: {error}")]
    Spawn {
        /// The address.
        addr: SocketAddr,
        /// The error of the spawn.
        error: io::Error,
    },
    /// The broker's thread ended (it should run until the process exits).
    #[error("the embedded MQTT broker on {addr} stopped: {reason}")]
    Stopped {
        /// The address.
        addr: SocketAddr,
        /// Why, as far as known.
        reason: String,
    },
}

/// A free TCP port on `ip`: bound, read and released, so another process may take it in
/// between; good enough for tests and for [`EmbeddedBroker::start`] with port 0.
pub fn free_local_port(ip: IpAddr) -> Result<u16, BrokerError> {
    TcpListener::bind(SocketAddr::new(ip, 0))
        .and_then(|listener| listener.local_addr())
        .map(|bound| bound.port())
        .map_err(|error| BrokerError::NoFreePort { ip, error })
}

/// Fails if `addr` cannot be listened on now (rumqttd would only log it, on its thread).
fn check_can_listen(addr: SocketAddr) -> Result<(), BrokerError> {
    match TcpListener::bind(addr) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            Err(BrokerError::AddressInUse { addr })
        }
        Err(error) => Err(BrokerError::CannotListen { addr, error }),
    }
}

/// A TLS listener of the embedded broker: where, and its certificate and key (PEM).
#[derive(Debug, Clone)]
pub struct TlsListener {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The broker's certificate (chain), PEM.
    pub cert_file: PathBuf,
    /// Its private key, PEM.
    pub key_file: PathBuf,
}

impl TlsListener {
    /// Checks that its files can be read and hold PEM, naming the one that cannot.
    fn check(&self) -> Result<(), BrokerError> {
        for (file, what) in [
            (&self.cert_file, "CERTIFICATE"),
            (&self.key_file, "PRIVATE KEY"),
        ] {
            let refuse = |reason: String| BrokerError::Tls {
                file: file.clone(),
                reason,
            };
            let text = std::fs::read_to_string(file)
                .map_err(|err| refuse(format!("cannot read it: {err}")))?;
            if !text.contains("-----BEGIN") || !text.contains(what) {
                return Err(refuse(format!("expected PEM, BEGIN ... {what}")));
            }
        }
        Ok(())
    }
}

/// The rumqttd configuration: one MQTT 3.1.1 listener on `listen`, a TLS one when asked,
/// everything else off.
fn config(
    listen: SocketAddr,
    max_payload: usize,
    auth: Option<HashMap<String, String>>,
    tls: Option<&TlsListener>,
) -> Config {
    let connections = ConnectionSettings {
        // A client has 60 s after its TCP connect to send CONNECT (u16 in rumqttd: < 65.5 s).
        connection_timeout_ms: 60_000,
        max_payload_size: max_payload.saturating_add(PACKET_OVERHEAD),
        max_inflight_count: 1_000,
        auth,
        external_auth: None,
        // A subscription to a filter nobody published on yet creates it.
        dynamic_filters: true,
    };
    let server = ServerSettings {
        // Also the name of rumqttd's listener thread.
        name: "janitoo-mqtt-v4".to_owned(),
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
            max_segment_size: ROUTER_SEGMENT_SIZE,
            max_segment_count: ROUTER_SEGMENT_COUNT,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(
            std::iter::once(("janitoo".to_owned(), server.clone()))
                .chain(tls.map(|tls| {
                    let secured = ServerSettings {
                        name: "janitoo-mqtts-v4".to_owned(),
                        listen: tls.listen,
                        tls: Some(rumqttd::TlsConfig::Rustls {
                            capath: None,
                            certpath: tls.cert_file.display().to_string(),
                            keypath: tls.key_file.display().to_string(),
                        }),
                        ..server
                    };
                    ("janitoo-tls".to_owned(), secured)
                }))
                .collect(),
        ),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

/// The address to connect to in order to reach a listener on `listen`.
fn connect_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// An MQTT 3.1.1 CONNECT: clean session, keep-alive 10 s, client id [`PROBE_CLIENT_ID`].
fn probe_connect_packet(login: Option<&(String, String)>) -> Vec<u8> {
    // Clean session; with a login, the user name and password flags too.
    let flags = if login.is_some() { 0xc2 } else { 0x02 };
    let mut variable = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 10];
    variable.extend_from_slice(&(PROBE_CLIENT_ID.len() as u16).to_be_bytes());
    variable.extend_from_slice(PROBE_CLIENT_ID);
    if let Some((user, password)) = login {
        for field in [user, password] {
            variable.extend_from_slice(&(field.len() as u16).to_be_bytes());
            variable.extend_from_slice(field.as_bytes());
        }
    }
    // Shorter than 128 bytes: the remaining length is one byte.
    let mut packet = vec![0x10, variable.len() as u8];
    packet.extend_from_slice(&variable);
    packet
}

/// Connects to `addr`, sends a CONNECT and expects an accepting CONNACK within `timeout`, then
/// closes the connection.
fn probe(addr: SocketAddr, timeout: Duration, login: Option<&(String, String)>) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    stream.write_all(&probe_connect_packet(login))?;
    let mut connack = [0_u8; 4];
    stream.read_exact(&mut connack)?;
    // CONNACK, remaining length 2, no session present, return code 0 (accepted).
    if connack == [0x20, 0x02, 0x00, 0x00] {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected answer to CONNECT: {connack:02x?}"),
        ))
    }
}

/// A running embedded broker.
///
/// It lives until the process exits: rumqttd cannot be stopped, and dropping this handle
/// leaves it running.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    thread: JoinHandle<()>,
    probe_login: Option<(String, String)>,
}

/// The accounts an embedded broker requires: nobody connects without one of them.
#[derive(Debug, Clone, Default)]
pub struct Accounts(HashMap<String, String>);

impl Accounts {
    /// Reads `user:password` lines (blank lines and `#` comments skipped) from `file`.
    pub fn load(file: &Path) -> Result<Accounts, BrokerError> {
        let accounts = janitoo_config::read_lines(file, 2, "account", |fields| match fields {
            [user, password] if !user.is_empty() && !password.is_empty() => {
                Ok((user.to_string(), password.to_string()))
            }
            _ => Err("expected user:password".into()),
        })?;
        Ok(Accounts(accounts.into_iter().collect()))
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A password nobody can guess, for the broker's own readiness probe: 128 bits from the
/// process's random hash keys.
fn probe_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
        );
        hasher.finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

impl EmbeddedBroker {
    /// Starts a broker listening on `listen` and returns once it answers MQTT.
    ///
    /// A port 0 is replaced by a free port on the same IP address: [`EmbeddedBroker::addr`]
    /// tells which. Fails with [`BrokerError::AddressInUse`] if something listens there
    /// already, [`BrokerError::NotReady`] if the broker does not answer an MQTT CONNECT within
    /// [`READY_TIMEOUT`], [`BrokerError::Stopped`] if its thread ends meanwhile (the address
    /// was taken after the check, say).
    pub fn start(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        EmbeddedBroker::start_limited(listen, DEFAULT_MAX_PAYLOAD)
    }

    /// Starts a broker as [`EmbeddedBroker::start`] does, that takes payloads of at most
    /// `max_payload` bytes (the controller's `[limits] max_payload`).
    pub fn start_limited(
        listen: SocketAddr,
        max_payload: usize,
    ) -> Result<EmbeddedBroker, BrokerError> {
        EmbeddedBroker::start_with(listen, max_payload, None)
    }

    /// Starts a broker as [`EmbeddedBroker::start_limited`] does that, with `accounts`,
    /// requires one of them of every client.
    pub fn start_with(
        listen: SocketAddr,
        max_payload: usize,
        accounts: Option<Accounts>,
    ) -> Result<EmbeddedBroker, BrokerError> {
        EmbeddedBroker::start_secured(listen, max_payload, accounts, None)
    }

    /// Starts a broker as [`EmbeddedBroker::start_with`] does, with a TLS listener too.
    pub fn start_secured(
        listen: SocketAddr,
        max_payload: usize,
        accounts: Option<Accounts>,
        tls: Option<TlsListener>,
    ) -> Result<EmbeddedBroker, BrokerError> {
        if let Some(tls) = &tls {
            tls.check()?;
            check_can_listen(tls.listen)?;
        }
        let probe_login = accounts
            .as_ref()
            .map(|_| ("janitoo-ready-probe".to_owned(), probe_password()));
        let auth = accounts.map(|Accounts(mut pairs)| {
            if let Some((user, password)) = &probe_login {
                pairs.insert(user.clone(), password.clone());
            }
            pairs
        });
        let addr = if listen.port() == 0 {
            SocketAddr::new(listen.ip(), free_local_port(listen.ip())?)
        } else {
            listen
        };
        check_can_listen(addr)?;
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                let mut broker = Broker::new(config(addr, max_payload, auth, tls.as_ref()));
                // Returns only once its listener thread has ended: it could not listen.
                if let Err(err) = broker.start() {
                    tracing::error!(%addr, %err, "embedded MQTT broker stopped");
                }
            })
            .map_err(|error| BrokerError::Spawn { addr, error })?;
        let broker = EmbeddedBroker {
            addr,
            thread,
            probe_login,
        };
        broker.wait_until_ready()?;
        tracing::debug!(%addr, "embedded MQTT broker ready");
        Ok(broker)
    }

    /// Probes the broker until it answers MQTT, its thread ends or [`READY_TIMEOUT`] passes.
    fn wait_until_ready(&self) -> Result<(), BrokerError> {
        let target = connect_addr(self.addr);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.thread.is_finished() {
                return Err(BrokerError::Stopped {
                    addr: self.addr,
                    reason: "rumqttd ended at start (could it listen there?)".to_owned(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BrokerError::NotReady {
                    addr: self.addr,
                    seconds: READY_TIMEOUT.as_secs(),
                });
            }
            match probe(
                target,
                left.min(Duration::from_secs(1)),
                self.probe_login.as_ref(),
            ) {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::trace!(addr = %self.addr, %err, "embedded MQTT broker not ready yet");
                    std::thread::sleep(Duration::from_millis(5).min(left));
                }
            }
        }
    }

    /// The address it listens on (with the port chosen when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the broker's thread ends, which it does only on failure.
    fn join(self) -> BrokerError {
        let reason = match self.thread.join() {
            Ok(()) => "rumqttd returned (its listener ended)".to_owned(),
            Err(_) => "rumqttd panicked".to_owned(),
        };
        BrokerError::Stopped {
            addr: self.addr,
            reason,
        }
    }
}

/// Runs a broker on `listen` in the foreground, for `janitoo broker --listen ADDR`: blocks for
/// ever once started, so it returns only an error (it could not start, or it stopped).
pub fn run_foreground(
    listen: SocketAddr,
    accounts: Option<Accounts>,
    tls: Option<TlsListener>,
) -> Result<(), BrokerError> {
    let required = accounts.as_ref().map_or(0, Accounts::len);
    let secured = tls.as_ref().map(|tls| tls.listen);
    let broker = EmbeddedBroker::start_secured(listen, DEFAULT_MAX_PAYLOAD, accounts, tls)?;
    if let Some(secured) = secured {
        tracing::info!(addr = %secured, "embedded MQTT broker listening with TLS");
    }
    tracing::info!(addr = %broker.addr(), accounts = required, "embedded MQTT broker listening");
    Err(broker.join())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe is a well-formed MQTT 3.1.1 CONNECT.
    #[test]
    fn probe_packet_is_a_valid_connect() {
        let packet = probe_connect_packet(None);
        assert_eq!(packet[0], 0x10);
        assert_eq!(usize::from(packet[1]), packet.len() - 2);
        assert_eq!(&packet[2..9], b"\x00\x04MQTT\x04");
        assert_eq!(
            &packet[packet.len() - PROBE_CLIENT_ID.len()..],
            PROBE_CLIENT_ID
        );
    }

    /// An unspecified listen address is probed on the loopback address of its family.
    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        assert_eq!(
            connect_addr("0.0.0.0:1883".parse().unwrap()),
            "127.0.0.1:1883".parse().unwrap()
        );
        assert_eq!(
            connect_addr("[::]:1883".parse().unwrap()),
            "[::1]:1883".parse().unwrap()
        );
        assert_eq!(
            connect_addr("192.0.2.1:1883".parse().unwrap()),
            "192.0.2.1:1883".parse().unwrap()
        );
    }
}
