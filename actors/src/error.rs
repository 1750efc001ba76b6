//! The one error type of the actors crate.

use thiserror::Error;

/// Why a controller could not start or stop.
#[derive(Debug, Error)]
pub enum ActorError {
    /// A component of the configuration cannot be built.
    #[error("{file}: `buses.{bus}.components.{component}`: {reason}")]
    Component {
        /// The configuration file.
        file: String,
        /// The bus oid.
        bus: String,
        /// The component key.
        component: String,
        /// Why.
        reason: String,
    },
    /// A bus aggregate names a value none of the bus's components has.
    #[error("{file}: `buses.{bus}.aggregates.{value}`: no component of bus {bus} has a value {value:?} (the bus's component values: {known})")]
    Aggregate {
        /// The configuration file.
        file: String,
        /// The bus oid.
        bus: String,
        /// The value it names.
        value: String,
        /// The values there are.
        known: String,
    },
    /// The configuration file cannot be opened for write-back, or a file it names (TLS, the
    /// broker password, the network key) cannot be used.
    #[error(transparent)]
    Config(#[from] janitoo_config::ConfigError),
    /// A node's address is still to lease (`hadd = "auto"`): the controller starts after
    /// [`crate::leasing::lease_addresses`].
    #[error("{file}: `{place}.hadd` is \"auto\" and not leased yet: lease the addresses first (`janitoo run` does)")]
    Unleased {
        /// The configuration file.
        file: String,
        /// The node's table (`buses.garden`).
        place: String,
    },
    /// The process cannot wait for Ctrl-C or SIGTERM.
    #[error("cannot wait for a stop signal: {0}")]
    Signal(std::io::Error),
    /// An actor went away before answering.
    #[error("an actor stopped before answering: {0}")]
    Mailbox(#[from] actix::MailboxError),
}
