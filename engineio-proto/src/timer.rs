//! A fixed table of deadlines keyed by a small enum (quinn-proto's `TimerTable` shape).

use std::time::Instant;

/// An enum usable as a timer key: a dense index below `N`.
pub(crate) trait TimerKey: Copy {
    /// Number of distinct keys.
    const COUNT: usize;
    /// The key's index, below `COUNT`.
    fn index(self) -> usize;
    /// The key at `index` (only called with indices below `COUNT`).
    fn from_index(index: usize) -> Self;
}

/// One optional deadline per key; no allocation, no per-timer object.
#[derive(Debug, Clone)]
pub(crate) struct TimerTable<K: TimerKey, const N: usize> {
    slots: [Option<Instant>; N],
    _key: std::marker::PhantomData<K>,
}

impl<K: TimerKey, const N: usize> Default for TimerTable<K, N> {
    fn default() -> Self {
        TimerTable {
            slots: [None; N],
            _key: std::marker::PhantomData,
        }
    }
}

impl<K: TimerKey, const N: usize> TimerTable<K, N> {
    pub(crate) fn set(&mut self, key: K, at: Instant) {
        if let Some(slot) = self.slots.get_mut(key.index()) {
            *slot = Some(at);
        }
    }

    pub(crate) fn stop(&mut self, key: K) {
        if let Some(slot) = self.slots.get_mut(key.index()) {
            *slot = None;
        }
    }

    #[cfg(test)]
    fn is_set(&self, key: K) -> bool {
        self.slots.get(key.index()).copied().flatten().is_some()
    }

    pub(crate) fn clear(&mut self) {
        self.slots = [None; N];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }

    /// Takes the earliest expired timer (deadline at or before `now`), if any, with the
    /// deadline it was set for: what the timer causes happens at that instant, however
    /// late the binding noticed it.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(K, Instant)> {
        let mut best: Option<(usize, Instant)> = None;
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(at) = *slot
                && at <= now
                && best.is_none_or(|(_, b)| at < b)
            {
                best = Some((i, at));
            }
        }
        let (i, at) = best?;
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = None;
        }
        Some((K::from_index(i), at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum T {
        A,
        B,
    }
    impl TimerKey for T {
        const COUNT: usize = 2;
        fn index(self) -> usize {
            self as usize
        }
        fn from_index(i: usize) -> Self {
            if i == 0 { T::A } else { T::B }
        }
    }

    #[test]
    // Tests need some instant as the origin of their virtual clock.
    #[allow(clippy::disallowed_methods)]
    fn expires_in_deadline_order_and_only_once() {
        let t0 = Instant::now();
        let mut t: TimerTable<T, { T::COUNT }> = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(T::B, t0 + Duration::from_secs(1));
        t.set(T::A, t0 + Duration::from_secs(2));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_expired(t0), None);
        let late = t0 + Duration::from_secs(5);
        assert_eq!(
            t.pop_expired(late),
            Some((T::B, t0 + Duration::from_secs(1)))
        );
        assert_eq!(
            t.pop_expired(late),
            Some((T::A, t0 + Duration::from_secs(2)))
        );
        assert_eq!(t.pop_expired(late), None);
        t.set(T::A, t0);
        assert!(t.is_set(T::A));
        t.stop(T::A);
        assert!(!t.is_set(T::A));
        t.set(T::B, t0);
        t.clear();
        assert_eq!(t.next(), None);
    }
}
