//! The operator tools: `janitoo query`, `get`, `set` and `spy`, plain MQTT clients of any
//! Janitoo network (ours or the original's).
//!
//! Exit codes, for scripts: 0 done; 1 the broker is unreachable or nobody answered; 2 a bad
//! argument (nothing was sent); 3 the node answered with a refusal (4xx or 5xx).
//!
//! - [`client`]: a tool's own connection, which asks and waits for answers;
//! - [`output`]: what the tools print;
//! - one module per command: [`query`], [`value`] (get and set), [`spy`], [`lease`].

pub mod client;
pub mod lease;
pub mod output;
pub mod query;
pub mod spy;
pub mod value;

pub use client::{hadd_argument, Received, ToolClient};
pub use output::{emit, show_data, table};

use crate::run::Failure;

/// A value genre, as the tools name it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum GenreArg {
    /// User values.
    User,
    /// Configuration values.
    Config,
    /// System values.
    System,
    /// Basic values.
    Basic,
    /// Commands.
    Command,
}

impl From<GenreArg> for janitoo_protocol::Genre {
    fn from(genre: GenreArg) -> Self {
        use janitoo_protocol::Genre;
        match genre {
            GenreArg::User => Genre::User,
            GenreArg::Config => Genre::Config,
            GenreArg::System => Genre::System,
            GenreArg::Basic => Genre::Basic,
            GenreArg::Command => Genre::Command,
        }
    }
}

/// Runs a tool's work on a runtime of its own.
fn block_on<T>(work: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Other(err.into()))?
        .block_on(work)
}
