//! Cross-crate tests of the engineio-rs workspace, and the helpers they share.
//!
//! - `tests/bindings.rs`: both server bindings (tokio and smol) over real loopback
//!   sockets, the same test bodies instantiated once per binding.
//! - `tests/client_faults.rs`: our client (both runtimes) against the misbehaving server
//!   of [`fault_server`]; `tests/ws_resets.rs`: how both servers report a WebSocket's end.
//! - `tests/cluster.rs`: cluster nodes (tokio and smol) on a real redis-server.
//! - `tests/metrics.rs`: the metrics counted after scripted sessions, on both bindings
//!   and both client runtimes, read through [`recorded`].
//! - `tests/api.rs`: the application-facing API (issue 14); `tests/actix.rs` and
//!   `tests/axum.rs`: the server mounted in those frameworks.
//! - `tests/examples.rs`: python-engineio's examples as ported in engineio-tokio/examples,
//!   run as processes (quickstart pair, latency pair, static files, 401, logging).
//! - The guide's pages and the READMEs are doctests of this crate (see `build.rs`).
//! - `tests/interop.rs`: the real peers (Node engine.io / engine.io-client,
//!   python-engineio, Chromium) through `tests/interop/run.py`.
#![allow(clippy::disallowed_methods)]

pub mod binding;
pub mod child;
pub mod cluster;
pub mod fault_server;
pub mod net;
pub mod recorded;
pub mod virtual_rt;

// Every page of docs/, the README and each crate's README, as doctests (tests/build.rs
// lists them): their Rust code blocks are compiled, and run unless marked `no_run`.
include!(concat!(env!("OUT_DIR"), "/doc_pages.rs"));
