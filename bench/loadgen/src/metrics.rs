//! What a run measures besides its own counters: latency histograms, the CPU time of the
//! server and of the load generator (from `/proc/PID/stat`), and the server's memory
//! (from `/proc/PID/status`).

use std::time::{Duration, Instant};

/// Sub-buckets per power of two: 32, so a reported percentile is within about 3 %.
const SUB_BITS: u32 = 5;
/// Values (nanoseconds) are clamped below 2^40 (about 18 minutes).
const MAX_VALUE: u64 = (1 << 40) - 1;
/// Buckets needed for [`MAX_VALUE`]: 64 exact ones, then 32 per power of two.
const BUCKETS: usize = (((40 - SUB_BITS) as usize) << SUB_BITS) + 64;

/// A log-linear latency histogram in nanoseconds: fixed size, no allocation per sample.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < 64 {
        return v as usize;
    }
    let exponent = 63 - v.leading_zeros();
    let shift = exponent - SUB_BITS;
    ((shift as usize) << SUB_BITS) + (v >> shift) as usize
}

/// The middle of bucket `i`'s range.
fn bucket_value(i: usize) -> u64 {
    if i < 64 {
        return i as u64;
    }
    let shift = (i >> SUB_BITS) - 1;
    let sub = (i - (shift << SUB_BITS)) as u64;
    (sub << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Records one duration.
    pub(crate) fn record(&mut self, d: Duration) {
        let v = (d.as_nanos() as u64).min(MAX_VALUE);
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds `other`'s samples.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The `q` quantile (0..=1) in microseconds (0 without samples).
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        if q >= 1.0 {
            return self.max as f64 / 1000.0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max) as f64 / 1000.0;
            }
        }
        self.max as f64 / 1000.0
    }

    /// `p50_us=.. p90_us=.. p99_us=.. max_us=..` with the given key prefix.
    pub(crate) fn fields(&self, prefix: &str) -> String {
        format!(
            "{prefix}p50_us={:.1} {prefix}p90_us={:.1} {prefix}p99_us={:.1} {prefix}max_us={:.1}",
            self.quantile_us(0.5),
            self.quantile_us(0.9),
            self.quantile_us(0.99),
            self.quantile_us(1.0)
        )
    }

    /// `p50 / p99 / max` in milliseconds, for the human line.
    pub(crate) fn human(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.quantile_us(0.5) / 1000.0,
            self.quantile_us(0.99) / 1000.0,
            self.quantile_us(1.0) / 1000.0
        )
    }
}

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of a process (all its threads), in clock ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The summed ticks of `pids` (`None` if there are none or one cannot be read).
fn ticks_of(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|p| process_ticks(&p.to_string()))
        .sum::<Option<u64>>()
}

/// Busy ticks of the whole machine (all CPUs), from `/proc/stat`.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some(total - idle)
}

/// A `/proc/PID/status` field in kB (`VmRSS`, `VmHWM`).
pub(crate) fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(key)?
            .strip_prefix(':')?
            .split_ascii_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// CPU use over a window, in percent of one core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuUsage {
    /// The server process (NaN without `--server-pid`).
    pub(crate) server: f64,
    /// This load generator.
    pub(crate) loadgen: f64,
    /// Everything else on the machine (other developers' builds...).
    pub(crate) other: f64,
    /// Seconds of CPU the server used in the window (NaN without `--server-pid`).
    pub(crate) server_seconds: f64,
}

impl CpuUsage {
    /// `server_cpu_pct=.. loadgen_cpu_pct=.. other_cpu_pct=..`.
    pub(crate) fn fields(&self) -> String {
        format!(
            "server_cpu_pct={:.0} loadgen_cpu_pct={:.0} other_cpu_pct={:.0}",
            self.server, self.loadgen, self.other
        )
    }

    /// `count` per CPU-second of the server (NaN when unknown or zero).
    pub(crate) fn per_server_cpu_second(&self, count: u64) -> f64 {
        if self.server_seconds > 0.0 {
            count as f64 / self.server_seconds
        } else {
            f64::NAN
        }
    }
}

/// CPU time snapshots at the start of a measurement window.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    pids: Vec<u32>,
    server: Option<u64>,
    me: Option<u64>,
    machine: Option<u64>,
    start: Instant,
}

impl CpuMeter {
    /// Starts measuring (the server's process only if `pid` is given).
    pub(crate) fn start(pid: Option<u32>) -> CpuMeter {
        Self::start_all(pid.as_slice())
    }

    /// Starts measuring a server made of several processes (the nodes of a cluster, a
    /// balancer): their CPU is added up.
    pub(crate) fn start_all(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            pids: pids.to_vec(),
            server: ticks_of(pids),
            me: process_ticks("self"),
            machine: machine_busy_ticks(),
            start: Instant::now(),
        }
    }

    /// Use since [`CpuMeter::start`].
    pub(crate) fn stop(&self) -> CpuUsage {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let ticks = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / TICKS_PER_SECOND,
            _ => f64::NAN,
        };
        let server_seconds = ticks(self.server, ticks_of(&self.pids));
        let me_seconds = ticks(self.me, process_ticks("self"));
        let machine_seconds = ticks(self.machine, machine_busy_ticks());
        let known = me_seconds
            + if server_seconds.is_nan() {
                0.0
            } else {
                server_seconds
            };
        CpuUsage {
            server: server_seconds / secs * 100.0,
            loadgen: me_seconds / secs * 100.0,
            other: ((machine_seconds - known) / secs * 100.0).max(0.0),
            server_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for v in [0u64, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, MAX_VALUE] {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "{v} -> {b}");
            last = b;
            let mid = bucket_value(b);
            assert!(mid.abs_diff(v) <= v / 16 + 1, "{v} -> {mid}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        assert!((h.quantile_us(0.5) - 50.0).abs() < 2.0);
        assert!((h.quantile_us(0.99) - 99.0).abs() < 4.0);
        assert_eq!(h.quantile_us(1.0), 100.0);
        assert_eq!(h.total, 100);
    }
}
