//! Cross-crate tests of the engineio-rs workspace.
//!
//! The test files under `tests/tests/` exercise the public API of the workspace's crates
//! together. Interop tests against real peers (Node `engine.io`, python-engineio and
//! Chromium) live here too once the runtime bindings exist.

/// The README's code examples, compiled and run as doctests so that they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
