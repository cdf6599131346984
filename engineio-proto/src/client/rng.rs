//! The client's only source of randomness: a splitmix64 generator over the seed the
//! binding injects, for reconnection jitter and cache-busting tokens.

use std::time::Duration;

use super::config::ReconnectConfig;

/// splitmix64 (Steele, Lea and Flood): tiny, fast, and good enough for jitter. Not for
/// secrets.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A cache-busting token: 11 URL-safe characters holding 64 fresh bits. Successive
    /// tokens never repeat within 2^64 draws (splitmix64 is a bijection of its counter).
    pub(crate) fn token(&mut self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut n = self.next_u64();
        let mut out = String::with_capacity(11);
        for _ in 0..11 {
            let c = ALPHABET.get((n & 63) as usize).copied().unwrap_or(b'A');
            out.push(char::from(c));
            n >>= 6;
        }
        out
    }
}

/// The delay before retry `attempt` (1-based): socket.io-client's `Backoff.duration()`.
/// `initial * 2^(attempt-1)`, moved by up to `randomization_factor` of itself in a random
/// direction, capped at `max_delay`. Never panics, whatever the configuration.
pub(crate) fn backoff(config: &ReconnectConfig, attempt: u32, rng: &mut SplitMix64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(62) as i32;
    let base = config.initial_delay.as_secs_f64() * 2f64.powi(exponent);
    let factor = config.randomization_factor.clamp(0.0, 1.0);
    let r = rng.next_f64();
    let deviation = r * factor * base;
    let jittered = if rng.next_u64() & 1 == 0 {
        base - deviation
    } else {
        base + deviation
    };
    let max = config.max_delay;
    if !jittered.is_finite() || jittered >= max.as_secs_f64() {
        return max;
    }
    Duration::try_from_secs_f64(jittered.max(0.0)).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed() {
        let mut a = SplitMix64::new(1);
        let mut b = SplitMix64::new(1);
        let mut c = SplitMix64::new(2);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs.first(), Some(&c.next_u64()));
        for _ in 0..1000 {
            let f = a.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
    }

    #[test]
    fn tokens_are_url_safe_and_distinct() {
        let mut rng = SplitMix64::new(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let t = rng.token();
            assert_eq!(t.len(), 11);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert!(seen.insert(t));
        }
    }

    #[test]
    fn backoff_without_jitter_doubles_up_to_the_cap() {
        let cfg = ReconnectConfig {
            randomization_factor: 0.0,
            ..ReconnectConfig::default()
        };
        let mut rng = SplitMix64::new(3);
        let delays: Vec<u64> = (1..=6)
            .map(|n| backoff(&cfg, n, &mut rng).as_millis() as u64)
            .collect();
        assert_eq!(delays, [1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff(&cfg, u32::MAX, &mut rng), Duration::from_secs(5));
    }

    #[test]
    fn backoff_jitter_stays_in_bounds_and_varies() {
        let cfg = ReconnectConfig::default();
        let mut rng = SplitMix64::new(11);
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..200 {
            for n in 1..=4u32 {
                let base = 1000.0 * f64::from(1u32 << (n - 1));
                let d = backoff(&cfg, n, &mut rng).as_secs_f64() * 1000.0;
                assert!(d >= base * 0.5 - 1e-6, "attempt {n}: {d}");
                assert!(d <= (base * 1.5).min(5000.0) + 1e-6, "attempt {n}: {d}");
                distinct.insert(d as u64);
            }
        }
        assert!(distinct.len() > 100);
    }

    #[test]
    fn backoff_survives_extreme_configurations() {
        let mut rng = SplitMix64::new(0);
        for (initial, max) in [
            (Duration::ZERO, Duration::ZERO),
            (Duration::MAX, Duration::MAX),
            (Duration::MAX, Duration::from_secs(1)),
            (Duration::from_secs(10), Duration::from_secs(1)),
        ] {
            let cfg = ReconnectConfig {
                initial_delay: initial,
                max_delay: max,
                randomization_factor: 1.0,
                max_attempts: None,
            };
            for n in [0, 1, 2, 64, u32::MAX] {
                assert!(backoff(&cfg, n, &mut rng) <= max);
            }
        }
    }
}
