//! # engineio-tokio
//!
//! Engine.IO v4 server and client on the [tokio](https://tokio.rs) runtime.
//!
//! This crate will hold the tokio binding of [`engineio_proto`]: an HTTP server built on
//! hyper 1 and tokio-tungstenite that is both a standalone server and a `tower::Service`
//! plus `Layer` (for axum and other tower stacks), and a client that talks to Node's
//! `engine.io`, python-engineio and this project's own servers. The binding owns sockets,
//! timers and framing; every protocol decision is made by `engineio-proto`.
//!
//! Status: not implemented yet. Only the wire codec exists so far; it is re-exported as
//! [`proto`].

/// The protocol core this binding drives.
pub use engineio_proto as proto;
