//! # janitoo-web
//!
//! The web manager of a Janitoo controller, on the controller's own actix System: the network
//! (controllers with role and epoch, nodes with state and last seen, a map of controllers and
//! their nodes), values by genre with live updates over a WebSocket, editable values (the
//! reply's status shown), the actor metrics of every controller, and `GET /metrics` in the
//! Prometheus text format. The page is embedded in the binary: no build step.
//!
//! Enable it with `[web] listen = "127.0.0.1:8080"` in the configuration, or `--web ADDR`.

pub mod hub;
pub mod login;
mod login_pages;
pub mod model;
mod server;

pub use login::{Logins, Role, Users};
pub use server::{start, WebServer};

use std::net::SocketAddr;

/// Why the web manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The address cannot be listened on.
    #[error("web manager: cannot listen on {listen}: {source}")]
    Bind {
        /// The address.
        listen: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The users file cannot be used.
    #[error(transparent)]
    Users(#[from] janitoo_config::LineFileError),
}
