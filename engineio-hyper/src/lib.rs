//! # engineio-hyper
//!
//! The part of the Engine.IO server and client that is HTTP and WebSocket plumbing but not
//! tied to a runtime, shared by `engineio-tokio` and `engineio-smol` so that neither copies
//! it: the tower service and layer, the per-session driver, request bodies, compression,
//! the WebSocket handshake answer, static files, the [`server::Socket`] handle, and the
//! client driver. A binding implements [`Runtime`] (time, timers, spawning, turning an
//! upgraded connection into a WebSocket stream, opening client connections) and adds its
//! `serve` and `connect` functions.
//!
//! Every protocol decision is made by [`engineio_proto`] (re-exported as [`proto`]); this
//! crate only moves bytes, frames and time between it and the network.
//!
//! Applications normally use a binding crate, which re-exports what is needed from here.
#![deny(unsafe_code)]

pub mod arrival;
pub mod client;
mod link;
pub mod listener;
mod log;
pub mod metrics;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod ws;

pub use engineio_proto as proto;
pub use runtime::{Runtime, Timer, WebSocketIo};
