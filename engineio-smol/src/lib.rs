//! # engineio-smol
//!
//! Engine.IO v4 server and client on the [smol](https://docs.rs/smol) runtime, plus a
//! blocking client that needs no runtime from its caller.
//!
//! This crate will hold the smol binding of [`engineio_proto`]: hyper 1 through smol-hyper,
//! async-tungstenite and async-io timers, with the same capabilities as `engineio-tokio`.
//! It is the proof that the protocol core does not depend on tokio.
//!
//! Status: not implemented yet. Only the wire codec exists so far; it is re-exported as
//! [`proto`].

/// The protocol core this binding drives.
pub use engineio_proto as proto;
