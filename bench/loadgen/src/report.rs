//! Per-client counters merged into one result, and the output lines.

use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::metrics::Histogram;

/// What one client (or the whole run, after merging) counted.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Completed operations inside the measurement window (echoes, round trips...).
    pub(crate) ops: u64,
    /// Their latencies.
    pub(crate) latency: Histogram,
    /// Clients (or operations) that failed.
    pub(crate) errors: u64,
    /// The first failure, for the RESULT line.
    pub(crate) first_error: Option<String>,
    /// Echoes that came compressed (permessage-deflate).
    pub(crate) compressed: u64,
}

impl Stats {
    /// Counts a failure, keeping the first message.
    pub(crate) fn error(&mut self, e: impl Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Adds another client's counts.
    pub(crate) fn merge(&mut self, other: Stats) {
        self.ops += other.ops;
        self.latency.merge(&other.latency);
        self.errors += other.errors;
        self.compressed += other.compressed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// ` first_error="..."` or nothing.
    pub(crate) fn error_field(&self) -> String {
        match &self.first_error {
            Some(e) => format!(" first_error=\"{}\"", e.replace('"', "'")),
            None => String::new(),
        }
    }
}

/// When a run measures: it warms up until `from` and stops counting at `until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Start of the measurement window.
    pub(crate) from: Instant,
    /// End of the measurement window (and of the run).
    pub(crate) until: Instant,
}

impl Window {
    /// A window starting after `warmup`, lasting `duration`.
    pub(crate) fn new(warmup: Duration, duration: Duration) -> Window {
        let from = Instant::now() + warmup;
        Window {
            from,
            until: from + duration,
        }
    }

    /// Whether `t` is inside the window.
    pub(crate) fn contains(&self, t: Instant) -> bool {
        t >= self.from && t < self.until
    }

    /// The window's length in seconds.
    pub(crate) fn seconds(&self) -> f64 {
        (self.until - self.from).as_secs_f64()
    }
}

/// Prints the machine-readable line and the human one.
pub(crate) fn emit(result: &str, human: &str) {
    println!("RESULT {result}");
    println!("  {human}");
}

/// A number with thousands separators, for the human line.
pub(crate) fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let s = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}
