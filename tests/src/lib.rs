//! Cross-crate tests of the engineio-rs workspace, and the helpers they share.
//!
//! - `tests/bindings.rs`: both server bindings (tokio and smol) over real loopback
//!   sockets, the same test bodies instantiated once per binding.
//! - `tests/client_faults.rs`: our client (both runtimes) against the misbehaving server
//!   of [`fault_server`]; `tests/ws_resets.rs`: how both servers report a WebSocket's end.
//! - `tests/cluster.rs`: cluster nodes (tokio and smol) on a real redis-server.
//! - `tests/metrics.rs`: the metrics counted after scripted sessions, on both bindings
//!   and both client runtimes, read through [`recorded`].
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

/// The README's code examples, compiled and run as doctests so that they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The deployment guide's examples, compiled as doctests.
#[doc = include_str!("../../docs/deployment.md")]
#[cfg(doctest)]
pub struct DeploymentDoctests;

/// The getting-started guide's examples, compiled as doctests.
#[doc = include_str!("../../docs/getting-started.md")]
#[cfg(doctest)]
pub struct GettingStartedDoctests;

/// The operating guide's examples (the metrics setup), compiled as doctests.
#[doc = include_str!("../../docs/operating.md")]
#[cfg(doctest)]
pub struct OperatingDoctests;
