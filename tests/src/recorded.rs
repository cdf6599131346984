//! What a `metrics` recorder saw, for tests: metrics-util's `DebuggingRecorder` read as
//! running totals (its snapshots hand out what changed since the last one).
//!
//! ```
//! use engineio_tests::recorded::Recorded;
//!
//! let (recorder, recorded) = Recorded::new();
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::counter!("things_total", "kind" => "a").increment(2);
//!     metrics::gauge!("open").increment(1.0);
//! });
//! assert_eq!(recorded.counter("things_total", &[("kind", "a")]), 2);
//! assert_eq!(recorded.counter("things_total", &[("kind", "a")]), 2, "totals, not deltas");
//! assert_eq!(recorded.gauge("open", &[]), 1.0);
//! assert_eq!(recorded.find("missing", &[]), None);
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A metric's value so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Total {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// Every value a histogram recorded.
    Histogram(Vec<f64>),
}

/// The running totals of a [`DebuggingRecorder`].
#[derive(Debug)]
pub struct Recorded {
    snapshotter: Snapshotter,
    totals: Mutex<BTreeMap<String, Total>>,
}

/// `name{a=1,b=2}` with the labels sorted.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

impl Recorded {
    /// A recorder (to install, globally or in a local scope) and its totals.
    pub fn new() -> (DebuggingRecorder, Recorded) {
        let recorder = DebuggingRecorder::new();
        let recorded = Recorded {
            snapshotter: recorder.snapshotter(),
            totals: Mutex::new(BTreeMap::new()),
        };
        (recorder, recorded)
    }

    /// Adds what changed since the last look to the totals, and returns them.
    fn update(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Total>> {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        for (composite, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let labels: Vec<(&str, &str)> = composite
                .key()
                .labels()
                .map(|l| (l.key(), l.value()))
                .collect();
            let k = key(composite.key().name(), &labels);
            let entry = totals.entry(k);
            match value {
                DebugValue::Counter(n) => {
                    let e = entry.or_insert(Total::Counter(0));
                    if let Total::Counter(total) = e {
                        *total += n;
                    }
                }
                DebugValue::Gauge(g) => {
                    let e = entry.or_insert(Total::Gauge(0.0));
                    if let Total::Gauge(total) = e {
                        *total += g.into_inner();
                    }
                }
                DebugValue::Histogram(values) => {
                    let e = entry.or_insert(Total::Histogram(Vec::new()));
                    if let Total::Histogram(all) = e {
                        all.extend(values.into_iter().map(|v| v.into_inner()));
                    }
                }
            }
        }
        totals
    }

    /// The metric with this name and exactly these labels, if it was registered.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<Total> {
        self.update().get(&key(name, labels)).cloned()
    }

    /// A counter's total; panics if it was never registered.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(Total::Counter(n)) => n,
            other => panic!("{}: not a registered counter: {other:?}", key(name, labels)),
        }
    }

    /// A gauge's value; panics if it was never registered.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(name, labels) {
            Some(Total::Gauge(g)) => g,
            other => panic!("{}: not a registered gauge: {other:?}", key(name, labels)),
        }
    }

    /// Every value a histogram recorded; panics if it was never registered.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(name, labels) {
            Some(Total::Histogram(v)) => v,
            other => panic!(
                "{}: not a registered histogram: {other:?}",
                key(name, labels)
            ),
        }
    }

    /// The sum of a counter over every label value it was registered with.
    pub fn counter_sum(&self, name: &str) -> u64 {
        let prefix = format!("{name}{{");
        self.update()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| match v {
                Total::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    }

    /// Every counter that is not zero, as `name{labels} = n` lines (for messages).
    pub fn nonzero(&self) -> Vec<String> {
        self.update()
            .iter()
            .filter_map(|(k, v)| match v {
                Total::Counter(0) => None,
                Total::Gauge(g) if *g == 0.0 => None,
                Total::Histogram(h) if h.is_empty() => None,
                _ => Some(format!("{k} = {v:?}")),
            })
            .collect()
    }
}
