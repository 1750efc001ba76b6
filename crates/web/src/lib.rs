//! # janitoo-web
//!
//! The web manager of a controller (actix-web, assets embedded in the binary): the network,
//! values with live updates over a WebSocket, editable values, the actor metrics, and
//! Prometheus text on `GET /metrics`.
//!
//! Nothing is here yet: the manager is built by the "operator tools" issue.
